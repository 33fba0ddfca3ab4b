"""Fit f(x) = x*W + b by hand in TensorFlow 2, then see Keras's fit() do the same.

A full-batch training loop in the open (a tf.Module with two tf.Variables, mean
squared error, tf.GradientTape, Variable.assign_sub), checked against the exact
least-squares line. The comments are the lesson; tests/test_lessons.py proves them.

    python main.py              # train with the settings below; --help for options
    python main.py --keras      # then the same training through Keras's fit()
"""

import os
import signal

# TensorFlow's C++ logger reads this once, at `import tensorflow`, so it is set first:
# "2" hides INFO and WARNING lines (README's FAQ lists, by version, a few that don't).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Pool freed tensor memory for reuse (TensorFlow's BFC allocator): on some CPUs, without
# it, each big tensor comes fresh from the system (see README's Performance section).
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
if __name__ == "__main__":  # Ctrl-C while TensorFlow loads, or output piped into a
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # closed pipe: stop, no traceback
    if hasattr(signal, "SIGPIPE"):  # not on Windows
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)

import argparse
import math
import sys
import time
from collections import namedtuple

import keras  # Keras 3, which comes with TensorFlow 2.16 and later
import numpy as np
import tensorflow as tf

# Settings to change. NUM_EXAMPLES to SEED are also options: python main.py --help
TRUE_W = 3.0  # slope that generates the data; training should come close
TRUE_B = 2.0  # intercept that generates the data
NUM_EXAMPLES = 1000  # number of (x, y) pairs, all used in every step
NOISE_STD = 1.0  # standard deviation of the noise added to each y
LEARNING_RATE = 0.1  # step size: how far each update moves against the gradient
EPOCHS = 100  # full passes over the data; one update per pass (full batch)
SEED = 42  # seeds the data, so every run with the same settings matches
INITIAL_W = 5.0  # where training starts: far from 3, so you watch it move
INITIAL_B = 0.0  # likewise far from 2


# 1. Data: y = x*W + b + noise. ---------------------------------------------------
def make_data(num_examples, true_w, true_b, noise_std, seed):
    """Return x and y as float32 NumPy arrays of shape (num_examples,)."""
    # NumPy promises these numbers for this seed only on one NumPy build and machine.
    rng = np.random.default_rng(seed)
    # float32 on purpose: tf.Variable(5.0) is float32, NumPy defaults to float64,
    # and a float64 tensor times a float32 Variable raises InvalidArgumentError
    # eagerly and TypeError while a tf.function traces (a float64 NumPy array times
    # it quietly gives float32, eagerly). Matching dtypes avoid all three.
    x = rng.standard_normal(num_examples, dtype=np.float32)
    noise = rng.standard_normal(num_examples, dtype=np.float32) * np.float32(noise_std)
    # The noise is why even W=3, b=2 leave a loss: mean(noise**2), about noise_std**2.
    return x, x * np.float32(true_w) + np.float32(true_b) + noise


# 2. Model: a tf.Module holding two tf.Variables. ---------------------------------
class LinearModel(tf.Module):
    """f(x) = x*w + b, with w and b as trainable tf.Variables."""

    def __init__(self, initial_w, initial_b):
        super().__init__(name="linear_model")
        # Variables, because tensors are immutable and training changes w and b in
        # place (a bias made with tf.zeros(()) has no assign_sub). A GradientTape
        # watches trainable Variables on its own; a constant, only after tape.watch.
        # tf.Module finds Variable attributes: model.trainable_variables lists both.
        self.w = tf.Variable(initial_w, dtype=tf.float32, name="w")
        self.b = tf.Variable(initial_b, dtype=tf.float32, name="b")

    def __call__(self, x):
        return x * self.w + self.b


# 3. Loss: mean squared error. ----------------------------------------------------
def mean_squared_error(y_true, y_pred):
    """Mean of (y_true - y_pred)**2: one number that says how wrong we are."""
    # Target first, as in Keras. tf.square counts misses above and below the line
    # alike, big ones more; tf.reduce_mean makes them the one number to minimize.
    return tf.reduce_mean(tf.square(y_true - y_pred))


# 4. One training step: forward pass on the tape, gradients, update. ---------------
def train_step(model, x, y, learning_rate):
    """Update model.w and model.b in place; return the loss from before the update."""
    # The tape records operations on watched Variables inside the `with` block, so
    # the loss must be computed there: computed outside, its gradient is None.
    with tf.GradientTape() as tape:
        loss = mean_squared_error(y, model(x))
    # Ask after the block: inside it, gradient() stops this tape recording, and a
    # persistent tape would record the gradient's own computation (needed only for
    # second derivatives). A tape gives gradients once; a second call raises
    # RuntimeError. For this model they equal the hand derivation
    #   dL/dW = -2*mean(x*(y - f(x))),  dL/db = -2*mean(y - f(x)).
    dloss_dw, dloss_db = tape.gradient(loss, [model.w, model.b])
    # The gradient points uphill, so step against it, by learning rate x gradient
    # (learning_rate_limits says how large is too large). assign_sub changes the
    # Variable in place; `model.w = model.w - ...` would replace it with a plain
    # tensor, whose next gradient is None. One call of Keras's optimizer
    # keras.optimizers.SGD(learning_rate).apply_gradients makes this same update.
    model.w.assign_sub(learning_rate * dloss_dw)
    model.b.assign_sub(learning_rate * dloss_db)
    return loss


# 5. tf.function: the same step, run as a graph. ----------------------------------
def make_step(eager=False, jit_compile=False):
    """Return train_step itself (eager), or compiled with tf.function."""
    # Eager mode runs each operation as Python reaches it: easy to debug with print()
    # and pdb. tf.function runs the Python once to trace the operations into a graph,
    # then runs the graph without the Python: same numbers, less Python per step. A
    # new input shape or dtype, or a new Python value such as another learning rate,
    # traces again. NumPy arrays passed in become new tensors on every call, so run()
    # converts the data once. To debug, use --eager or tf.config.run_functions_eagerly
    # (True). jit_compile=True has XLA fuse the step's elementwise operations into a
    # few loops that read the data fewer times; the numbers agree to float32 rounding.
    return train_step if eager else tf.function(train_step, jit_compile=jit_compile)


# 6. The loop: one full-batch step per epoch. -------------------------------------
# One row of the record: W and b after `epoch` updates, and the loss at exactly them.
Epoch = namedtuple("Epoch", ["epoch", "w", "b", "loss"])


def train(model, x, y, learning_rate, epochs, step, report=print):
    """Run `epochs` steps, report() each Epoch; return them, and if it diverged."""
    history = []
    for epoch in range(epochs + 1):
        w, b = float(model.w.numpy()), float(model.b.numpy())
        if epoch < epochs:  # the step returns the loss at w, b, then updates them
            loss = float(step(model, x, y, learning_rate))
        else:  # after the last update, one forward pass gives the final loss
            loss = float(mean_squared_error(y, model(x)))
        history.append(Epoch(epoch, w, b, loss))
        # Below the stability limit each step lowers the loss in exact arithmetic;
        # in float32 a converged loss wobbles (up by about 1e-7 of itself), so only
        # a loss that is not finite or 10 times its start means divergence.
        if not math.isfinite(loss) or loss > 10 * history[0].loss:
            return history, True
        report(history[-1])
    return history, False


# 7. The exact answer, to check training against (NumPy, float64). ---------------
def least_squares(x, y):
    """Return (W, b) minimizing mean((y - (x*W + b))**2), exactly, in float64."""
    # The minimum of the loss is where both derivatives are zero:
    #   dL/db = 0  gives  b = mean(y) - W*mean(x)
    #   dL/dW = 0  then gives  W = sum(xc*yc) / sum(xc*xc)
    # with xc = x - mean(x), yc = y - mean(y). Gradient descent stops where the
    # gradient is zero, so here: the best line for this sample, near W=3, b=2 but
    # not on it, with a loss no higher than the true line's.
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    xc, yc = x64 - x64.mean(), y64 - y64.mean()
    w = float(np.dot(xc, yc) / np.dot(xc, xc))
    return w, float(y64.mean() - w * x64.mean())


def learning_rate_limits(x):
    """Return (stability limit, fastest rate): rates below the limit converge."""
    # The loss is a quadratic bowl in (W, b), with the same second derivatives
    # (Hessian) everywhere:  H = 2 * [[mean(x**2), mean(x)], [mean(x), 1]].
    # A step maps the distance d to the minimum to (I - rate*H) d: along an
    # eigenvector of H with eigenvalue lam, it multiplies d by |1 - rate*lam|. All
    # directions shrink only if rate < 2/lam_max, the stability limit. Near it the
    # factor is close to 1 and training crawls. The slower direction shrinks
    # fastest at rate = 2/(lam_min + lam_max), where both shrink by
    # (lam_max - lam_min)/(lam_max + lam_min) per step.
    x64 = x.astype(np.float64)
    mean_x, mean_x2 = x64.mean(), np.dot(x64, x64) / x64.size
    hessian = 2 * np.array([[mean_x2, mean_x], [mean_x, 1]])
    lam_min, lam_max = np.linalg.eigvalsh(hessian)
    return float(2 / lam_max), float(2 / (lam_min + lam_max))


# 8. The bridge to Keras: the same training through compile() and fit(). ---------
class KerasLine(keras.Model):
    """The same f(x) = x*w + b as a Keras model."""

    def __init__(self, initial_w, initial_b):
        super().__init__()
        # add_weight, not tf.Variable: Keras 3 does not track plain tf.Variable
        # attributes (TensorFlow's guide uses them), so trainable_weights would be
        # empty and fit() would train nothing, with only a warning.
        start = keras.initializers.Constant
        self.w = self.add_weight(shape=(), initializer=start(initial_w), name="w")
        self.b = self.add_weight(shape=(), initializer=start(initial_b), name="b")

    def call(self, x):
        return x * self.w + self.b


def fit_with_keras(x, y, learning_rate, epochs, initial_w, initial_b, **fit_options):
    """Train a KerasLine with compile() and fit(); return its (W, b)."""
    model = KerasLine(initial_w, initial_b)
    # SGD's update is train_step's assign_sub; "mse" is mean_squared_error; and
    # jit_compile=False keeps XLA out, as make_step does ("auto" uses it on a GPU).
    sgd = keras.optimizers.SGD(learning_rate)
    model.compile(optimizer=sgd, loss="mse", jit_compile=False)
    # fit()'s default is shuffled batches of 32, one update each: mini-batch
    # stochastic gradient descent, another algorithm. One batch of all the data, in
    # order, makes each epoch the same full-batch step (on a CPU, rounding and all).
    # verbose=0 hides the progress bar; fit()'s callbacks and loss metric still run.
    options = {"batch_size": len(x), "shuffle": False, "verbose": 0} | fit_options
    model.fit(x, y, epochs=epochs, **options)
    return float(model.w.numpy()), float(model.b.numpy())


# ==================================================================================
# The rest is machinery you may skip: the command line, the report and the figure.
# ==================================================================================
TABLE_ROWS = 10  # the progress table prints about this many rows, any --epochs
PLOT_POINTS = 2000  # most data points drawn by --plot; more only blurs
BYTES_PER_EXAMPLE = 120  # peak memory per example (measured: under 100)
FLOAT32_EPS = float(np.finfo(np.float32).eps)  # gap from 1 to the next float32


def parse_args(argv):
    """Parse and check the command line; on bad input, exit with status 2."""
    parser = argparse.ArgumentParser(
        prog="main.py", formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add = parser.add_argument
    # fmt: off
    add("--epochs", type=int, default=EPOCHS, help="full-batch updates to run")
    add("--learning-rate", type=float, default=LEARNING_RATE, help="size of a step")
    add("--num-examples", type=int, default=NUM_EXAMPLES, help="(x, y) examples")
    add("--noise", type=float, default=NOISE_STD, help="noise std on each y")
    add("--seed", type=int, default=SEED, help="seed for the data")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--eager", action="store_true", help="run the step eagerly")
    mode.add_argument("--jit-compile", action="store_true",
                      help="compile the step with XLA: faster on large data")
    add("--keras", action="store_true", help="then train the same way with fit()")
    add("--plot", metavar="PATH", help="save a PNG figure (needs matplotlib)")
    args = parser.parse_args(argv)
    for option, value, ok, accepts in [
        ("epochs", args.epochs, 1 <= args.epochs <= 1e15, "an integer from 1 to 1e15"),
        ("learning-rate", args.learning_rate, 0 < args.learning_rate < math.inf,
         "a finite number > 0"),
        ("num-examples", args.num_examples, 2 <= args.num_examples <= 1e15,
         "an integer from 2 to 1e15"),
        ("noise", args.noise, 0 <= args.noise < math.inf, "a finite number >= 0"),
        ("seed", args.seed, 0 <= args.seed <= 1e15, "an integer from 0 to 1e15"),
    ]:
        if not ok:
            parser.error(f"argument --{option}: expected {accepts}, got {value}")
    # fmt: on
    need, available = args.num_examples * BYTES_PER_EXAMPLE, math.inf
    if os.path.exists("/proc/meminfo"):  # Linux says what is available; else no check
        with open("/proc/meminfo") as meminfo:
            line = next(line for line in meminfo if line.startswith("MemAvailable:"))
        available = int(line.split()[1]) * 1024
    if need > available:
        parser.error(
            f"argument --num-examples: {args.num_examples:,} examples need about "
            f"{need / 1e9:.3g} GB of memory; {available / 1e9:.3g} GB is available"
        )
    if args.plot is None:
        return parser, args
    if not args.plot.lower().endswith(".png"):
        parser.error(f"argument --plot: expected a .png file name, got {args.plot!r}")
    existed = os.path.exists(args.plot)
    try:  # really create it: os.access says yes to root even where writing fails
        open(args.plot, "ab").close()
        import matplotlib  # noqa: F401  (optional: only --plot needs it)
    except OSError as error:
        parser.error(f"argument --plot: cannot write {args.plot!r}: {error.strerror}")
    except ImportError:
        parser.error("argument --plot: needs matplotlib: pip install matplotlib")
    finally:
        if not existed and os.path.exists(args.plot):
            os.remove(args.plot)
    return parser, args


def verdict(history, fitted, fastest, noise):
    """Converged or not, why, and what to try next."""
    (_, w0, b0, _), (_, w, b, _) = history[-2:]
    # float32 keeps about 7 significant digits: float32 numbers near v are about
    # FLOAT32_EPS*|v| apart, and the gradient near the minimum is made of rounded
    # numbers, so training stops a few such gaps from the exact answer (measured:
    # up to 6). 32 gaps leaves room; answers near 1 or smaller use a fixed 1e-4.
    tolerance = max(1e-4, 32 * FLOAT32_EPS * max(map(abs, fitted)))
    gap = max(abs(w - fitted[0]), abs(b - fitted[1]))
    if gap <= tolerance:
        why = "With no noise, the least-squares line is the true line."
        if noise > 0:
            why = """Least squares is the best line for this sample. It differs from
the true line because the noise in a finite sample does not
average out to exactly zero."""
        head = f"Converged: learned W and b are within {tolerance:.2g} of least squares"
        return f"{head} (gap {gap:.1e}).\n{why}"
    head = f"Not converged: learned W and b are {gap:.1e} from least squares"
    head += f" (more than {tolerance:.2g})."
    stuck = " and ".join(k for k, u, v in (("W", w0, w), ("b", b0, b)) if u == v)
    if stuck:
        return f"""{head}
{stuck} no longer changes: each update is less than half the gap between float32
numbers there, so it rounds away, and more --epochs change nothing.
Use a larger --learning-rate: {fastest:.5f} is the fastest."""
    return f"""{head}
Try more --epochs, or a faster --learning-rate: {fastest:.5f} is the fastest."""


def save_plot(path, x, y, history):
    """Save a PNG: the data with both lines, and loss, W and b per epoch."""
    from matplotlib.figure import Figure  # optional: only --plot needs matplotlib

    epochs, w, b, loss = zip(*history)
    fig = Figure(figsize=(15, 4.5))  # no pyplot: no window, no backend to choose
    data_ax, loss_ax, param_ax = fig.subplots(1, 3)
    # The examples are independent draws, so the first PLOT_POINTS are a fair sample.
    data_ax.scatter(x[:PLOT_POINTS], y[:PLOT_POINTS], s=4, alpha=0.4)
    ends = np.array([x.min(), x.max()])
    data_ax.plot(ends, ends * TRUE_W + TRUE_B, "k--", ends, ends * w[-1] + b[-1], "r-")
    data_ax.legend(["data", "true line", "learned line"])
    loss_ax.plot(epochs, loss)
    loss_ax.axhline(np.mean(np.square(y - (x * TRUE_W + TRUE_B))), color="k", ls="--")
    loss_ax.legend(["loss (MSE)", "loss at true W, b"])
    param_ax.plot(epochs, w, "C0", epochs, b, "C1")
    param_ax.axhline(TRUE_W, color="C0", ls="--")
    param_ax.axhline(TRUE_B, color="C1", ls="--")
    param_ax.legend(["W", "b", "true W", "true b"])
    data_ax.set(title="(a) data and lines", xlabel="x", ylabel="y")
    loss_ax.set(title="(b) loss per epoch", xlabel="epoch")
    param_ax.set(title="(c) W and b per epoch", xlabel="epoch")
    fig.suptitle(f"learned W={w[-1]:.5f}, b={b[-1]:.5f}")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)


def run(args, parser):
    """Everything main() does once the command line is checked."""
    with np.errstate(over="ignore"):  # an overflow is reported just below
        x, y = make_data(args.num_examples, TRUE_W, TRUE_B, args.noise, args.seed)
    # Tensors once, here: the step would convert NumPy arrays again on every call.
    x_tensor, y_tensor = tf.constant(x), tf.constant(y)
    model = LinearModel(INITIAL_W, INITIAL_B)
    start_loss = float(mean_squared_error(y_tensor, model(x_tensor)))
    if not math.isfinite(start_loss):
        what = "the squared errors" if np.isfinite(y).all() else "the data"
        parser.error(
            f"argument --noise: with noise std {args.noise:g}, {what} overflow "
            "float32 (largest 3.4e+38); expected a smaller value"
        )
    limit, fastest = learning_rate_limits(x)
    mode = "eagerly" if args.eager else "as a tf.function graph"
    mode += " compiled by XLA" if args.jit_compile else ""
    n, rate = args.epochs, args.learning_rate
    print(
        f"Data: {args.num_examples:,} examples of y = {TRUE_W:g}*x + {TRUE_B:g} + "
        f"noise (noise std {args.noise:g}, seed {args.seed}).\nTraining: {n} "
        f"full-batch epoch{'s' * (n > 1)} from W={INITIAL_W:g}, b={INITIAL_B:g}, "
        f"step run {mode};\n          learning rate {rate:g} (stable below "
        f"{limit:.5f}, fastest {fastest:.5f}).\n\n{'epoch':>7}  {'W':>10}  "
        f"{'b':>10}  {'loss':>12}",
        flush=True,
    )
    interval, times, reported = max(1, math.ceil(n / TABLE_ROWS)), [], []

    def report(state):  # train() calls this with each Epoch: time it, print a few
        times.append(time.perf_counter())
        reported.append(state)
        if state.epoch % interval == 0 or state.epoch == n:
            epoch, w, b, loss = state
            print(f"{epoch:>7}  {w:>10.5f}  {b:>10.5f}  {loss:>12.5f}", flush=True)

    step, started = make_step(args.eager, args.jit_compile), time.perf_counter()
    try:
        history, diverged = train(model, x_tensor, y_tensor, rate, n, step, report)
    except KeyboardInterrupt:
        epoch, w, b, _ = reported[-1] if reported else (0, INITIAL_W, INITIAL_B, 0)
        where = f"epoch {epoch}: W={w:.5f}, b={b:.5f}"
        print(f"main.py: stopped by Ctrl-C at {where}.", file=sys.stderr)
        return 130
    last = history[-1]
    if diverged or rate >= limit:  # then no number of epochs would converge
        what = f"has not diverged within {n} epochs, but cannot converge"
        if diverged:
            what = f"diverged at epoch {last.epoch}: the loss grew from "
            what += f"{start_loss:.5g} to {last.loss:.5g}, over 10 times its start"
        if not math.isfinite(last.loss):
            what = f"diverged at epoch {last.epoch}: the loss overflowed float32"
        print(
            f"Training {what}.\nThe learning rate {rate:g} is not below the stability "
            f"limit {limit:.5f} (see learning_rate_limits).\nUse a smaller "
            f"--learning-rate: {fastest:.5f} is the fastest.",
            file=sys.stderr,
        )
        return 1
    fitted = least_squares(x, y)
    rows = [("learned", last.w, last.b), ("least-squares", *fitted)]
    rows.append(("true", TRUE_W, TRUE_B))
    first, later = times[0] - started, (times[n - 1] - times[0]) / max(1, n - 1)
    timing = f"Training took {times[-1] - started:.3f} s: epoch 1 took {first:.3f} s"
    timing += "" if args.eager else " (tracing the graph included)"
    timing += f",\nthen {later * 1e3:.3f} ms per epoch." if n > 1 else "."
    notes = [verdict(history, fitted, fastest, args.noise), timing]
    if args.keras:
        started = time.perf_counter()
        fit = fit_with_keras(x, y, rate, n, INITIAL_W, INITIAL_B)
        seconds = time.perf_counter() - started
        rows.append(("keras fit()", *fit))
        difference = max(abs(fit[0] - last.w), abs(fit[1] - last.b))
        same = difference <= 1e-6 * max(1.0, abs(last.w), abs(last.b))
        notes.append(
            f"keras fit() {'agrees with' if same else 'DIFFERS from'} the hand loop: W "
            f"and b differ by {difference:.1e}.\nfit() took {seconds:.2f} s, "
            f"{seconds / n * 1e3:.1f} ms per epoch: with one step an epoch, its own "
            "work (a new\ndata iterator each epoch, callbacks, a loss metric) costs "
            "more than the step."
        )
    x64, y64 = x.astype(np.float64), y.astype(np.float64)  # all three losses alike
    print()
    for label, w, b in rows:
        loss = np.mean(np.square(y64 - (x64 * w + b)))
        print(f"{label:<15}W={w:.5f}  b={b:.5f}  loss={loss:.5f}")
    print("\n".join(notes))
    if args.plot is not None:
        try:
            save_plot(args.plot, x, y, history)
        except OSError as error:
            print(f"main.py: error: argument --plot: {error}", file=sys.stderr)
            return 2
        print(f"Saved the figure to {args.plot}.")
    return 0


def main(argv=None):
    """Train, print the table and the summary; return the exit status."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C raises again
    parser, args = parse_args(argv)
    try:
        return run(args, parser)
    except KeyboardInterrupt:
        print("main.py: stopped by Ctrl-C.", file=sys.stderr)
        return 130
    except (MemoryError, tf.errors.ResourceExhaustedError):
        examples = f"argument --num-examples: out of memory with {args.num_examples:,}"
        print(f"main.py: error: {examples} examples; try fewer", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
