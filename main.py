"""Fit f(x) = x*W + b by hand in TensorFlow 2, then see Keras's fit() do the same.

Sections 1 to 8 are the lesson: read them in order. Section 9, optional, is how the
script judges a run. After the banner (a line of ===) comes the machinery: the
command line, the table and the figure. tests/ checks the facts stated here.

    python main.py              # train with the settings below; --help for options
    python main.py --keras      # then the same training through Keras's fit()
    python -c "import main; main.lesson()"  # sections 1 to 8 alone, no checks
"""

import argparse
import math
import os
import signal
import sys
import time
from collections import namedtuple

# TensorFlow's C++ logger reads this when TensorFlow is imported, so it is set
# first: "2" hides its INFO and WARNING lines (a few get through).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Ctrl-C while TensorFlow loads (seconds) exits at once, quietly: some libraries
# would turn the KeyboardInterrupt into an ImportError, with a traceback.
usual_ctrl_c = signal.signal(signal.SIGINT, lambda signum, frame: os._exit(130))
try:
    import keras  # Keras 3, which comes with TensorFlow 2.16 and later
    import numpy as np
    import tensorflow as tf
except ModuleNotFoundError as missing:  # one line, not a traceback
    fix = "activate the virtual environment, or pip install -r requirements.txt"
    print(f"main.py: error: no module named {missing.name!r}: {fix}", file=sys.stderr)
    sys.exit(2)
finally:
    signal.signal(signal.SIGINT, usual_ctrl_c)  # from here, Ctrl-C: KeyboardInterrupt

# Settings to change. NUM_EXAMPLES to SEED are also options: python main.py --help
TRUE_W = 3.0  # slope that generates the data; training should come close
TRUE_B = 2.0  # intercept that generates the data
NUM_EXAMPLES = 1000  # number of (x, y) pairs
NOISE_STD = 1.0  # standard deviation of the noise added to each y
LEARNING_RATE = 0.1  # how big a step each update of W and b takes (section 4)
EPOCHS = 100  # passes over the data
BATCH_SIZE = None  # examples per update; None: all of them (section 6)
SEED = 42  # seeds the random data: same settings, same data (on one NumPy build)
INITIAL = (5.0, 0.0)  # where W and b start: far from 3 and 2, so you see them move


# 1. Data: y = x*W + b + noise. ---------------------------------------------------
def make_data(num_examples, true_w, true_b, noise_std, seed):
    """Return x and y as float32 NumPy arrays of shape (num_examples,)."""
    rng = np.random.default_rng(seed)  # NumPy's random generator, seeded
    # x comes from N(0, 1), the normal distribution with mean 0 and standard
    # deviation 1. The noise comes from the same, scaled to noise_std. Both have the
    # dtype (number type) float32: 32-bit numbers with about 7 digits. TensorFlow
    # makes float32 from Python floats too. NumPy's default is float64, and mixing
    # the two can raise errors (README's FAQ lists each case).
    x = rng.standard_normal(num_examples, dtype=np.float32)
    noise = rng.standard_normal(num_examples, dtype=np.float32) * np.float32(noise_std)
    return x, x * np.float32(true_w) + np.float32(true_b) + noise


# 2. Model: a tf.Module holding two tf.Variables. ---------------------------------
class LinearModel(tf.Module):
    """f(x) = x*w + b, with w and b as trainable tf.Variables."""

    def __init__(self, initial_w, initial_b):
        super().__init__(name="linear_model")
        # A tensor is TensorFlow's array, and it cannot change once made. A
        # tf.Variable holds a value that can change, as training needs for w and b.
        # Variables are trainable unless made with trainable=False, and gradient
        # tapes (section 4) watch the trainable ones. tf.Module, TensorFlow's base
        # class for models, lists the trainable Variables stored on it in
        # model.trainable_variables.
        self.w = tf.Variable(initial_w, dtype=tf.float32, name="w")
        self.b = tf.Variable(initial_b, dtype=tf.float32, name="b")

    def __call__(self, x):
        return x * self.w + self.b


# 3. Loss: mean squared error. ----------------------------------------------------
def mean_squared_error(y_true, y_pred):
    """The loss: mean of (y_true - y_pred)**2, one number for how wrong we are."""
    # Target first, as in Keras. tf.square counts misses above and below the line
    # alike, and big misses more. tf.reduce_mean averages them. Even the true line
    # misses each y by its noise, so its loss is about noise_std**2.
    return tf.reduce_mean(tf.square(y_true - y_pred))


# 4. One training step: predictions and loss on a tape, gradients, update. --------
def train_step(model, x, y, learning_rate):
    """Update model.w and model.b in place; return the loss from before the update."""
    # A GradientTape records the operations run inside its `with` block, so the
    # loss is computed there. The tape watches the trainable Variables those
    # operations use. It watches a plain tensor only after tape.watch(tensor).
    with tf.GradientTape() as tape:
        loss = mean_squared_error(y, model(x))
    # The gradient is the pair of partial derivatives (dL/dW, dL/db), L being the
    # loss: how fast L changes as W alone, or b alone, changes. By the chain rule,
    # d/dW (y - (x*W + b))**2 = -2*x*(y - (x*W + b)), so dL/dW =
    # -2*mean(x*(y - f(x))), and likewise dL/db = -2*mean(y - f(x)). The tape
    # computes the same numbers from its record (a loss computed outside the
    # block has none: README's FAQ). Ask it after the block, since asked inside,
    # this tape stops recording. Ask it once: asked again, it raises RuntimeError
    # (unless the tape was made with persistent=True).
    dloss_dw, dloss_db = tape.gradient(loss, [model.w, model.b])
    # The gradient points uphill, so step against it: subtract learning_rate times
    # the gradient. That is gradient descent. Too large a rate overshoots (section
    # 7). assign_sub changes the Variable in place. `model.w = model.w - ...` would
    # instead put a plain tensor in its place, which no tape watches (README's FAQ
    # says what then goes wrong).
    model.w.assign_sub(learning_rate * dloss_dw)
    model.b.assign_sub(learning_rate * dloss_db)
    return loss


# 5. tf.function: the same step, run as a graph. ----------------------------------
def make_step(eager=False, jit_compile=False):
    """Return train_step itself (eager), or wrapped by tf.function (a graph)."""
    # Eager mode, TensorFlow's default, runs each operation as Python reaches it.
    # That is easy to debug with print() and pdb (Python's debugger). tf.function
    # instead runs the Python once, recording ("tracing") the operations it calls
    # into a graph. The graph is a fixed plan that TensorFlow then runs without the
    # Python: the same results, to float32 rounding, with less Python per step.
    # Inputs of a new shape (array size) or dtype, or a new Python value such as
    # another learning rate, trace again. To debug, run this script with --eager,
    # or call tf.config.run_functions_eagerly(True). jit_compile=True also has XLA,
    # TensorFlow's compiler, fuse the graph's operations into fewer passes over the
    # data.
    return train_step if eager else tf.function(train_step, jit_compile=jit_compile)


# 6. The loop: epochs of batches. -------------------------------------------------
# An epoch is one pass over the data. The data is cut into batches of batch_size
# examples, and each batch gets one step. With one batch of all the data (full
# batch, the default), every step follows the exact gradient. Smaller batches take
# more, cheaper steps, each following only its own batch's gradient. That is
# mini-batch gradient descent, which Keras's fit() does by default (section 8).
# train() takes x and y as tensors: tf.constant makes a tensor from a NumPy array
# once, where a tf.function would convert a NumPy array again at every call.
def train(model, x, y, learning_rate, epochs, batch_size, step, report):
    """Run `epochs` epochs of step() on x and y, sliced into batches.
    report is a callback, a function train() calls: report(epoch, model,
    batch_loss) at the start (epoch 0) and after each epoch. lesson(), after
    section 8, passes the simplest one. Stop early if report() returns True."""
    starts = range(0, len(x), batch_size)  # the last batch may be smaller
    batches = [(x[i : i + batch_size], y[i : i + batch_size]) for i in starts]
    sizes = [len(batch_x) for batch_x, _ in batches]
    report(0, model, None)  # where training starts
    for epoch in range(1, epochs + 1):
        losses = []
        for batch_x, batch_y in batches:
            loss = step(model, batch_x, batch_y, learning_rate)
            losses.append(float(loss))  # from a one-number tensor to a Python float
        # The epoch's batch losses (each from before its step), averaged with each
        # batch weighted by its size. Keras's fit() reports the same for an epoch.
        batch_loss = float(np.average(losses, weights=sizes))
        # A report() may return True to stop training. main.py's own does once the
        # loss has blown up: too large a learning rate overshoots more at every
        # step (section 7), and training diverges.
        if report(epoch, model, batch_loss):
            return


# 7. The exact answer (NumPy, float64), and which learning rates work. -----------
# Training is checked against the exact answer, and the learning rate against the
# rates that can work, both computed with NumPy in float64 (about 16 digits).
def least_squares(x, y):
    """Return (W, b) minimizing mean((y - (x*W + b))**2), exactly, in float64."""
    # The loss is lowest where both of its derivatives are zero: dL/db = 0 gives
    # b = mean(y) - W*mean(x), and then dL/dW = 0 gives W = sum(xc*yc) / sum(xc*xc),
    # with xc = x - mean(x) and yc = y - mean(y). Gradient descent stops where the
    # gradient is zero too, so full-batch training, at a learning rate that
    # converges (below), ends here: at the best line for this sample, near W=3,
    # b=2 but not on it.
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    xc, yc = x64 - x64.mean(), y64 - y64.mean()
    w = float(np.dot(xc, yc) / np.dot(xc, xc))
    return w, float(y64.mean() - w * x64.mean())


# Which learning rates work. The loss is quadratic in W and b: a bowl whose bottom
# (W*, b*) is least squares. Call d = (W - W*, b - b*) the vector from the bottom
# to (W, b). The gradient of a quadratic is linear in W and b, and it is zero at
# the bottom, so dL/dW = 2*mean(x*x)*(W - W*) + 2*mean(x)*(b - b*) and
# dL/db = 2*mean(x)*(W - W*) + 2*(b - b*). With x drawn from N(0, 1), mean(x*x)
# is about 1 and mean(x) about 0, so the gradient is about 2*d. A step subtracts
# learning_rate * gradient, so it turns d into about (1 - 2*learning_rate) * d.
# Rates below about 0.5 shrink d without overshooting. At about 0.5 the factor is
# about 0: d shrinks most (for the default data, by over 95% a step at 0.5). From
# about 0.5 to 1, d overshoots the bottom (the factor is negative) but still
# shrinks. Above about 1, d grows along at least one direction at every step, and
# training diverges.
# Section 9 (optional) computes the exact rates that main.py prints before
# training: the limit ("stable below", rounded down) and "balanced", the rate
# with the best worst case.


# 8. The bridge to Keras: the same training through compile() and fit(). ---------
class KerasLine(keras.Model):
    """The same f(x) = x*w + b as a Keras model."""

    def __init__(self, initial_w, initial_b):
        super().__init__()
        # add_weight, not tf.Variable. TensorFlow's guide stores a keras.Model's
        # weights as tf.Variable attributes, but Keras 3 does not track those:
        # they stay out of trainable_weights, the list fit() trains, so fit() trains
        # nothing, with only a warning. An initializer sets a weight's first value.
        constant = keras.initializers.Constant
        self.w = self.add_weight(shape=(), initializer=constant(initial_w), name="w")
        self.b = self.add_weight(shape=(), initializer=constant(initial_b), name="b")

    def call(self, x):  # Keras models define call(); model(x) runs it
        return x * self.w + self.b


def fit_with_keras(x, y, learning_rate, epochs, batch_size, start, **fit_options):
    """Train a KerasLine with compile() and fit(); return its (W, b). fit_options
    go to fit() as they are: main.py passes its callbacks (below) that way."""
    model = KerasLine(*start)
    # compile() only records how to train: the optimizer (the object that applies
    # updates) and the loss; "mse" is mean_squared_error. SGD(learning_rate) is
    # stochastic gradient descent ("stochastic": each batch's gradient is a noisy
    # estimate of the full one). With its default momentum of 0 (no part of the
    # last update carried into the next) it updates each weight as train_step's
    # assign_sub does. For each batch, fit() then runs Keras's own training step,
    # as a tf.function. Its update is section 4's (README's FAQ runs it by hand;
    # Keras also updates its metrics, the running numbers it reports):
    #     with tf.GradientTape() as tape:
    #         loss = the compiled loss of (y, model(x))
    #     gradients = tape.gradient(loss, model.trainable_weights)
    #     optimizer.apply_gradients(zip(gradients, model.trainable_weights))
    # jit_compile=False keeps XLA out, as make_step does by default (Keras's
    # default, "auto", may turn it on).
    sgd = keras.optimizers.SGD(learning_rate)
    model.compile(optimizer=sgd, loss="mse", jit_compile=False)
    # fit()'s default is batches of 32, with the examples shuffled every epoch. The
    # same batches in order (shuffle=False) are train()'s steps: the same W and b
    # after each epoch, to float32 rounding. verbose=0 hides fit()'s progress bar.
    options = {"batch_size": batch_size, "shuffle": False, "verbose": 0} | fit_options
    model.fit(x, y, epochs=epochs, **options)
    return float(model.w), float(model.b)


class ReportEachEpoch(keras.callbacks.Callback):
    """fit() calls its callbacks' methods at set points. This one calls report() as
    train() does, with the loss fit() passes on_epoch_end in `logs`."""

    def __init__(self, report):
        super().__init__()
        self.report = report

    def on_train_begin(self, logs=None):  # self.model: the model fit() trains
        self.report(0, self.model, None)  # where training starts

    def on_epoch_end(self, epoch, logs=None):  # fit() counts epochs from 0
        self.report(epoch + 1, self.model, logs["loss"])


# All together. ------------------------------------------------------------------
def lesson(epochs=EPOCHS):
    """Sections 1 to 8 with the settings at the top, and nothing else. It prints
    the first gradient two ways; W, b and the loss at them after each epoch (epoch
    0: the start), as main.py's table does; then least squares, and what Keras's
    fit() learns from the same batches. Run it: python -c "import main;
    main.lesson()"."""
    data = make_data(NUM_EXAMPLES, TRUE_W, TRUE_B, NOISE_STD, SEED)
    x, y = tf.constant(data[0]), tf.constant(data[1])  # tensors, as train() wants
    model = LinearModel(*INITIAL)
    # Section 4's claim, seen once: the tape's gradient is the chain rule's.
    with tf.GradientTape() as tape:
        loss = mean_squared_error(y, model(x))
    by_tape = tape.gradient(loss, [model.w, model.b])
    error = y - model(x)
    by_hand = [-2 * tf.reduce_mean(x * error), -2 * tf.reduce_mean(error)]
    for way, (dw, db) in [("the tape", by_tape), ("the chain rule", by_hand)]:
        print(f"dL/dW, dL/db by {way}: {float(dw):.4f}, {float(db):.4f}")

    def report(epoch, model, batch_loss):  # a plain report(): one line an epoch
        w, b, loss = float(model.w), float(model.b), mean_squared_error(y, model(x))
        print(f"{epoch:3}  W={w:.5f}  b={b:.5f}  loss={float(loss):.5f}")

    batch_size = BATCH_SIZE or NUM_EXAMPLES  # None: one batch of all the data
    train(model, x, y, LEARNING_RATE, epochs, batch_size, make_step(), report)
    print("least squares:  W={:.5f}  b={:.5f}".format(*least_squares(*data)))
    w, b = fit_with_keras(x, y, LEARNING_RATE, epochs, batch_size, INITIAL)
    print(f"keras fit():    W={w:.5f}  b={b:.5f}")
    return model


# 9. Appendix, optional: how main.py judges a run. --------------------------------
# The exact learning-rate limits in the header (linear algebra), the summary's
# losses, and the verdict: converged or not, and why, from the table's rows.
Epoch = namedtuple("Epoch", ["epoch", "w", "b", "loss", "batch_loss"])  # a table row


def stable_and_balanced_rates(x, batch_size):
    """Return (every step is stable below this rate, the balanced rate or None)."""
    # Exactly, section 7's gradient is H d, with H =
    # 2*[[mean(x*x), mean(x)], [mean(x), 1]], the loss's second derivatives (its
    # Hessian): a step turns d into (I - rate*H) d, I the identity matrix. Along
    # each of H's two eigenvectors (directions H only scales, by its eigenvalue
    # lam) a step multiplies d by (1 - rate*lam). Both shrink only below
    # 2/lam_max, the stability limit (just below it, d flips sign each step and
    # shrinks slowly). The larger of the two factors' sizes is smallest at the
    # balanced rate 2/(lam_min + lam_max)
    # (optimization texts: the optimal fixed step), where they are equal: at any
    # other rate, one direction shrinks more slowly.
    # With batches, each batch has its own H: this returns the smallest limit of
    # any batch, and no balanced rate.
    x64 = x.astype(np.float64)
    starts = np.arange(0, len(x), batch_size)
    sizes = np.diff(np.append(starts, len(x)))  # each batch's length
    # Each batch's mean(x) and mean(x*x): np.add.reduceat sums from each start.
    mean_x = np.add.reduceat(x64, starts) / sizes
    mean_x2 = np.add.reduceat(x64 * x64, starts) / sizes
    spread = np.sqrt((mean_x2 - 1) ** 2 + 4 * mean_x**2)  # eigenvalues of H, closed
    lam_min, lam_max = mean_x2 + 1 - spread, mean_x2 + 1 + spread  # form for 2x2
    balanced = float(2 / (lam_min[0] + lam_max[0])) if len(starts) == 1 else None
    return float(np.min(2 / lam_max)), balanced


def summary(x, y, rows):
    """A line per (label, W, b), each with its loss computed alike, in float64."""
    x64, y64, lines = x.astype(np.float64), y.astype(np.float64), [""]
    for label, w, b in rows:
        loss = np.mean(np.square(y64 - (x64 * w + b)))
        lines.append(f"{label:<15}W={w:.5f}  b={b:.5f}  loss={loss:.5f}")
    return "\n".join(lines)


def verdict(x, y, fitted, last_two, learning_rate, batches, balanced):
    """Converged or not, why, and what to try next, from the table rows (Epoch)
    of the last two epochs."""
    (_, w0, b0, *_), (_, w, b, *_) = last_two
    # How close counts as converged: float32 numbers near v are about eps*|v| apart
    # (eps, about 1.2e-7, is the gap after 1), and training stops a few such gaps
    # from the exact answer (measured: up to 6). So allow 32 gaps, or 1e-4 if that
    # is more. The tolerance compared is the one printed.
    eps = float(np.finfo(np.float32).eps)
    tolerance = float(f"{max(1e-4, 32 * eps * max(map(abs, fitted))):.2g}")
    gap = max(abs(w - fitted[0]), abs(b - fitted[1]))
    head = f"learned W and b are {gap:.1e} from least squares (tolerance {tolerance:g})"
    if gap <= tolerance:
        why = """Least squares is the best line for this sample. It differs from the
true line because a finite sample's noise does not cancel out exactly."""
        if max(abs(fitted[0] - TRUE_W), abs(fitted[1] - TRUE_B)) <= tolerance:
            why = "Least squares is the true line here: no noise, or too little to move it."
        return f"Converged: {head}.\n{why}"
    head = f"Not converged: {head}.\n"
    # Why not? Two checks use the gradient over all the data at the learned w, b.
    error = y.astype(np.float64) - (x.astype(np.float64) * w + b)
    gradient = np.abs([2 * np.mean(x * error), 2 * np.mean(error)])
    # An update smaller than half the gap to the next float32 number rounds away.
    gaps = np.spacing(np.float32([w, b]))
    stuck = [k for k, g, s in zip("Wb", gradient, gaps) if learning_rate * g < s / 2]
    if stuck:
        return f"""{head}{" and ".join(stuck)} cannot change: each update is less than half the gap between
float32 numbers there, so it rounds away. Use a larger --learning-rate."""
    # With batches, W and b can settle into a cycle: they end each epoch about
    # where they started it, though the gradient over all the data is not 0.
    moved = max(abs(w - w0), abs(b - b0))
    if batches > 1 and moved < learning_rate * batches * max(gradient) / 2:
        return f"""{head}Each update follows one batch's gradient, not all the data's. At a fixed learning
rate, W and b settle into a cycle that repeats each epoch, near least squares but
not on it. More --epochs change nothing; a smaller --learning-rate lands closer."""
    rate = f" (balanced {balanced:.5f})" if balanced else ""
    return f"{head}Try more --epochs, or another --learning-rate{rate}."


def why_no_convergence(last, start_loss, rate, stable, balanced):
    """Why a run cannot converge: it diverged, or its full-batch rate is too large.
    last: the table row (Epoch) it stopped at."""
    if not math.isfinite(last.loss):
        what = f"diverged at epoch {last.epoch}: the loss overflowed float32"
    elif last.loss > 10 * start_loss:
        what = f"diverged at epoch {last.epoch}: the loss grew from {start_loss:.5g}"
        what += f" to {last.loss:.5g}, over 10 times its start"
    else:  # not yet diverged: a full batch at or above the limit
        what = f"has not diverged within {counted(last.epoch, 'epoch')}, but cannot"
        what += " converge: along one direction each step overshoots a little more"
        what += " than the last"
    lines, limit = [f"Training {what}."], rounded_down(stable)
    if rate >= stable:
        of_any = "." if balanced else ", the smallest of any batch."
        above = f"The learning rate {rate:g} is not below the stability limit {limit}"
        lines.append(above + of_any)
    use = (
        f"balanced {balanced:.5f}"
        if balanced
        else f"every step is stable below {limit}"
    )
    lines.append(f"Use a smaller --learning-rate ({use}).")
    return "\n".join(lines)


# ==================================================================================
# The rest is machinery you may skip: the command line, the report and the figure.
# ==================================================================================
TABLE_ROWS = 10  # the table shows every ceil(epochs/TABLE_ROWS)-th epoch, the last
PROGRESS_SECONDS = 3.0  # on a long run, also a row at least this often
PLOT_POINTS = 2000  # most points drawn per curve by --plot; more only blurs
PATH_STEPS = 200  # updates drawn as a path on the loss contours by --plot
BYTES_PER_EXAMPLE = 120  # peak bytes per example beyond TensorFlow's (measured: 66)
OPTIONS = [  # the number options: name, default, lowest, highest, what it accepts
    ("epochs", EPOCHS, 1, 1e15, "an integer from 1 to 1e15"),
    ("learning-rate", LEARNING_RATE, math.ulp(0), 1e15, "a number > 0, up to 1e15"),
    ("num-examples", NUM_EXAMPLES, 2, 1e15, "an integer from 2 to 1e15"),
    ("batch-size", BATCH_SIZE, 1, 1e15, "an integer from 1 to 1e15"),
    ("noise", NOISE_STD, 0, 1e9, "a number from 0 to 1e9"),
    ("seed", SEED, 0, 1e15, "an integer from 0 to 1e15"),
]


def option_type(lowest, highest, accepts):
    """An argparse type: the text as the number `accepts` describes, or refused."""

    def convert(text):
        try:  # float reads 1e15 too, and holds every integer up to 2**53 exactly
            value = float(text)
        except ValueError:
            value = math.nan  # fails the test below
        integer = accepts.startswith("an integer")
        if not lowest <= value <= highest or (integer and not value.is_integer()):
            raise argparse.ArgumentTypeError(f"expected {accepts}, got {text}")
        return int(value) if integer else value

    return convert


def parse_args(argv):
    """Parse and check the command line; on bad input, exit with status 2."""
    parser = argparse.ArgumentParser(prog="main.py")
    for name, default, *limits in OPTIONS:
        shown = "all examples" if default is None else default
        kind, help_ = option_type(*limits), f"{limits[-1]} (default: {shown})"
        parser.add_argument(f"--{name}", type=kind, default=default, help=help_)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--eager", action="store_true", help="run the step eagerly")
    mode.add_argument("--jit-compile", action="store_true", help="compile with XLA")
    parser.add_argument("--keras", action="store_true", help="then train with fit()")
    parser.add_argument("--plot", metavar="PATH", help="save a PNG (needs matplotlib)")
    args, meminfo = parser.parse_args(argv), "/proc/meminfo"  # Linux's memory facts
    with open(meminfo if os.path.exists(meminfo) else os.devnull) as lines:
        free = [int(line.split()[1]) * 1024 for line in lines if "MemAvailable" in line]
    if free and (need := args.num_examples * BYTES_PER_EXAMPLE) > free[0]:
        need = f"{args.num_examples:,} examples need about {need / 1e9:.3g} GB"
        available = f"{free[0] / 1e9:.3g} GB is available"
        parser.error(f"argument --num-examples: {need} of memory; {available}")
    if args.plot is not None and (problem := plot_problem(args.plot)):
        parser.error(f"argument --plot: {problem}")
    return args


def plot_problem(path):
    """Why the figure cannot be saved at `path`, or None; changes no file of yours."""
    if not path.lower().endswith(".png"):
        return f"expected a .png file name, got {path!r}"
    try:
        if not os.path.lexists(path):  # create a file only where none is, then
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
            os.remove(path)  # remove it again
        elif not os.path.isfile(path):  # a FIFO, a folder, a device, a broken link
            return f"cannot write {path!r}: not a regular file"
        else:
            open(path, "ab").close()  # appends nothing; fails without permission
        import matplotlib  # noqa: F401  (optional: only --plot needs it)
    except OSError as error:
        return f"cannot write {path!r}: {error.strerror}"
    except ImportError:
        return "needs matplotlib: pip install matplotlib"
    return None


class Progress:
    """report() for train() and fit(): makes each Epoch, stops a diverged run,
    prints the table, and keeps what the summary and figure need, memory bounded."""

    def __init__(self, epochs, evaluate, batch_loss_title=None):
        self.epochs, self.evaluate, self.title = epochs, evaluate, batch_loss_title
        self.row_every = math.ceil(epochs / TABLE_ROWS)
        self.keep_every = math.ceil(epochs / PLOT_POINTS)
        self.kept = []  # every keep_every-th Epoch, for the summary and the figure
        self.last_two = []  # the last two Epochs, for the verdict
        self.path = [INITIAL]  # W and b after each update, for the figure
        self.diverged = None  # the Epoch whose loss blew up, if any
        self.printed = self.started = time.perf_counter()
        self.epoch_1_done = self.last_done = self.started  # times, for timing()
        title = f"  {batch_loss_title:>12}" if batch_loss_title else ""
        print(f"{'epoch':>7}  {'W':>10}  {'b':>10}  {'loss':>12}{title}")

    def __call__(self, epoch, model, batch_loss):
        """Record epoch; True (stop) if its loss is not finite or over 10 times its
        start: a converging loss does not grow, and float32 wobbles are far smaller."""
        w, b, loss = float(model.w), float(model.b), float(self.evaluate(model))
        state, now = Epoch(epoch, w, b, loss, batch_loss), time.perf_counter()
        if not math.isfinite(loss) or (self.kept and loss > 10 * self.kept[0].loss):
            self.diverged = state
            return True
        if epoch == 1:
            self.epoch_1_done = now
        self.last_done = now
        self.last_two = [*self.last_two[-1:], state]
        if epoch % self.keep_every == 0 or epoch == self.epochs:
            self.kept.append(state)
        due = epoch % self.row_every == 0 or epoch == self.epochs
        if due or now - self.printed >= PROGRESS_SECONDS:
            self.printed, shown = now, self.title and batch_loss is not None
            extra = f"  {batch_loss:>12.5f}" if shown else ""
            print(f"{epoch:>7}  {w:>10.5f}  {b:>10.5f}  {loss:>12.5f}{extra}")
        return False

    def recording(self, step):
        """`step`, which also keeps W and b after each of its first PATH_STEPS calls."""

        def recorded(model, *args):
            loss = step(model, *args)
            if len(self.path) <= PATH_STEPS:
                self.path.append((float(model.w), float(model.b)))
            return loss

        return recorded

    def timing(self, tracing):
        """How long train() took, its first epoch (with any tracing) apart."""
        first, last, n = self.epoch_1_done, self.last_done, self.epochs
        traced = " (tracing included)" if tracing else ""
        line = f"Training took {last - self.started:.3f} s: epoch 1 took "
        line += f"{first - self.started:.3f} s{traced}"
        later = f",\nthen {(last - first) / max(1, n - 1) * 1e3:.3f} ms per epoch."
        return line + (later if n > 1 else ".")


def save_plot(path, x, y, kept, fitted, walk):
    """Save a PNG: data and lines, loss per epoch, and the path on the loss bowl."""
    from matplotlib.figure import Figure  # optional: only --plot needs matplotlib

    epochs, w, b, loss, _ = zip(*kept)
    fig = Figure(figsize=(15, 4.5))  # no pyplot: no window, no backend to choose
    data_ax, loss_ax, bowl_ax = fig.subplots(1, 3)
    # The examples are independent draws, so the first PLOT_POINTS are a fair sample.
    data_ax.scatter(x[:PLOT_POINTS], y[:PLOT_POINTS], s=4, alpha=0.4)
    ends = np.array([x.min(), x.max()])
    data_ax.plot(ends, ends * TRUE_W + TRUE_B, "k--", ends, ends * w[-1] + b[-1], "r-")
    data_ax.legend(["data", "true line", "learned line"])
    loss_ax.plot(epochs, loss)
    loss_ax.axhline(np.mean(np.square(y - (x * TRUE_W + TRUE_B))), color="k", ls="--")
    loss_ax.legend(["loss (MSE)", "loss at true W, b"])
    # The loss on a grid of (W, b) from five means of the data, since it is quadratic.
    half = 1.1 * np.abs(walk - fitted).max() + 0.1  # the whole path, and some room
    gw, gb = np.meshgrid(*(np.linspace(c - half, c + half, 101) for c in fitted))
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    xx, x1, xy, y1, yy = map(np.mean, (x64 * x64, x64, x64 * y64, y64, y64 * y64))
    bowl = gw * gw * xx + 2 * gw * gb * x1 + gb * gb - 2 * gw * xy - 2 * gb * y1 + yy
    levels = np.geomspace(bowl.min(), bowl.max(), 15)
    bowl_ax.contour(gw, gb, bowl, levels, colors="0.7")
    bowl_ax.plot(walk[:, 0], walk[:, 1], "r.-", ms=3, lw=0.8)
    bowl_ax.plot(*fitted, "k*", ms=10)
    bowl_ax.legend([f"W, b: first {len(walk) - 1} updates", "least squares"])
    data_ax.set(title="(a) data and lines", xlabel="x", ylabel="y")
    loss_ax.set(title="(b) loss per epoch", xlabel="epoch")
    bowl_ax.set(title="(c) loss contours, path", xlabel="W", ylabel="b", aspect=1)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)


def make_evaluate(x, y, eager, jit_compile):
    """The loss over all the data for any model, run as make_step runs the step."""

    def evaluate(model):
        return mean_squared_error(y, model(x))

    return evaluate if eager else tf.function(evaluate, jit_compile=jit_compile)


def rounded_down(limit):
    """The limit to 5 decimals, rounded down: a rate typed back is below it too."""
    return f"{math.floor(limit * 1e5) / 1e5:.5f}"


def counted(n, noun):
    """'1 epoch', '2 epochs'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def print_header(args, batches, batch_size, stable, balanced):
    """What the run will do."""
    size = args.num_examples
    passes = counted(args.epochs, "full-batch epoch")
    if batches > 1:
        passes = f"{counted(args.epochs, 'epoch')} of {batches} batches of {batch_size}"
        passes += " (the last smaller)" if size % batch_size else ""
    mode = "eagerly" if args.eager else "as a tf.function graph"
    rates = f"stable below {rounded_down(stable)}"
    rates += f", balanced {balanced:.5f}" if balanced else " for every batch's step"
    line = f"y = {TRUE_W:g}*x + {TRUE_B:g} + noise (noise std {args.noise:g}"
    print(f"""Data: {size:,} examples of {line}, seed {args.seed}).
Training: {passes} from W={INITIAL[0]:g}, b={INITIAL[1]:g},
          step run {mode}{" compiled by XLA" if args.jit_compile else ""},
          learning rate {args.learning_rate:g} ({rates}).
""")


def run(args):
    """Everything main() does once the command line is checked; the exit status."""
    x, y = make_data(args.num_examples, TRUE_W, TRUE_B, args.noise, args.seed)
    tensors = tf.constant(x), tf.constant(y)  # start-up lines come before the header
    batch_size = min(args.batch_size or len(x), len(x))
    batches = -(-len(x) // batch_size)  # ceil(N / B)
    rate = args.learning_rate
    stable, balanced = stable_and_balanced_rates(x, batch_size)
    print_header(args, batches, batch_size, stable, balanced)
    evaluate = make_evaluate(*tensors, args.eager, args.jit_compile)
    progress = Progress(args.epochs, evaluate, "batch mean" if args.keras else None)
    step = make_step(args.eager, args.jit_compile)
    step = step if args.plot is None else progress.recording(step)  # the figure's path
    train(
        LinearModel(*INITIAL), *tensors, rate, args.epochs, batch_size, step, progress
    )
    last = progress.diverged or progress.last_two[-1]
    if progress.diverged or (balanced and rate >= stable):  # no --epochs converge
        why = why_no_convergence(last, progress.kept[0].loss, rate, stable, balanced)
        if args.keras:
            why += "\nkeras fit() was not run: it would take the same steps."
        print(why, file=sys.stderr)
        return 1
    fitted = least_squares(x, y)
    rows = [("learned", last.w, last.b), ("least-squares", *fitted)]
    print(summary(x, y, [*rows, ("true", TRUE_W, TRUE_B)]))
    print(verdict(x, y, fitted, progress.last_two, rate, batches, balanced))
    print(progress.timing(tracing=not args.eager))
    if args.keras:
        run_keras(args, x, y, evaluate, batch_size, last)
    if args.plot is not None:
        try:
            save_plot(args.plot, x, y, progress.kept, fitted, np.array(progress.path))
        except OSError as error:  # say, a full disk
            where = f"argument --plot: cannot write {args.plot!r}: {error.strerror}"
            print(f"main.py: error: {where}", file=sys.stderr)
            return 2
        print(f"Saved the figure to {args.plot}.")
    return 0


def run_keras(args, x, y, evaluate, batch_size, hand):
    """The same training with fit(), its table from a callback; does it agree?"""
    print("\nThe same training with Keras's compile() and fit():\n")
    progress, n = Progress(args.epochs, evaluate, "fit() loss"), args.epochs
    report, rate = ReportEachEpoch(progress), args.learning_rate
    fit = fit_with_keras(x, y, rate, n, batch_size, INITIAL, callbacks=[report])
    difference = max(abs(fit[0] - hand.w), abs(fit[1] - hand.b))
    same = difference <= 1e-5 * max(1, abs(hand.w), abs(hand.b))
    print(summary(x, y, [("keras fit()", *fit)]))
    agrees = "agrees with" if same else "DIFFERS from"
    print(f"keras fit() {agrees} the hand loop: W and b differ by {difference:.1e}.")
    seconds = time.perf_counter() - progress.started
    print(f"fit() took {seconds:.3f} s for {counted(n, 'epoch')}, tracing included.")


def main(argv=None):
    """Train, print the table and the summary; return the exit status."""
    # Line by line, so that a failed write shows at once; unprintable text escaped.
    if hasattr(sys.stdout, "reconfigure"):  # not a notebook's or a StringIO
        sys.stdout.reconfigure(line_buffering=True, errors="backslashreplace")
    try:
        return run(args := parse_args(argv))
    except SystemExit as exit_:  # argparse exits this way on bad input and --help
        return exit_.code
    except (MemoryError, tf.errors.ResourceExhaustedError):
        examples = f"--num-examples: out of memory with {args.num_examples:,} examples"
        print(f"main.py: error: argument {examples}; try fewer", file=sys.stderr)
        return 2
    except OSError as error:  # writing the output: a full disk, or a closed pipe
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no retry
        if isinstance(error, BrokenPipeError):  # its reader (`head`) has exited
            return 141
        error = f"cannot write the output: {error.strerror}"
        print(f"main.py: error: {error}", file=sys.stderr)
        return 2
    except BaseException as error:  # Ctrl-C, or an error a library made of one
        cause = error  # (an import it ran just then can fail with ImportError)
        while cause is not None and not isinstance(cause, KeyboardInterrupt):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        print("main.py: stopped by Ctrl-C.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
