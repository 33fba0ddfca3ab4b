"""Train f(x) = x*W + b by hand in TensorFlow 2: the loop that Keras's fit() hides.

This script fits a straight line to noisy data with a full-batch training loop
written out in the open: a tf.Module holding two tf.Variables, a mean squared
error loss, tf.GradientTape for the gradients and Variable.assign_sub for the
update. It then checks the answer against the exact least-squares line, so
every number it prints can be trusted. Read it top to bottom; the comments are
the lesson and tests/ proves what they claim.

Run it, and its tests, in a new virtual environment:

    python3 -m venv .venv && . .venv/bin/activate && pip install -r requirements.txt
    python main.py                      # train with the settings below
    python main.py --help               # every option, with its default
    python main.py --learning-rate 1.5  # see what divergence looks like
    python -m pytest                    # the tests that prove the comments
"""

import os

# TensorFlow's C++ core has its own logger, which reads this variable when
# TensorFlow is imported: set after the import, it does nothing. That is why
# the imports below come after a line of code. "2" hides INFO and WARNING lines
# and keeps ERROR lines. A few lines still appear on a machine without a GPU:
# some are printed before the variable is read, one is an ERROR about CUDA.
# README.md explains them; all are harmless. setdefault lets you choose from
# the shell instead: TF_CPP_MIN_LOG_LEVEL=0 python main.py shows everything.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import math
import sys
import time
from typing import NamedTuple

import numpy as np
import tensorflow as tf

# ---------------------------------------------------------------------------
# 1. Settings. The five used by parse_args are also options: main.py --help
# ---------------------------------------------------------------------------
TRUE_W = 3.0  # slope that generates the data; training should come close
TRUE_B = 2.0  # intercept that generates the data
NUM_EXAMPLES = 1000  # number of (x, y) pairs, all used in every step
NOISE_STD = 1.0  # standard deviation of the noise added to each y
LEARNING_RATE = 0.1  # step size: how far each update moves against the gradient
EPOCHS = 100  # full passes over the data; one update per pass (full batch)
SEED = 42  # seeds the data, so every run with the same settings matches
INITIAL_W = 5.0  # where training starts: far from 3, so you watch it move
INITIAL_B = 0.0  # likewise far from 2
TABLE_ROWS = 10  # the progress table prints about this many rows, any --epochs
DIVERGENCE_FACTOR = 10.0  # a loss this many times its start means "diverged"
CONVERGED_TOLERANCE = 1e-4  # learned within this of least squares: converged
PLOT_POINTS = 2000  # most data points drawn in --plot; more only blurs


# ---------------------------------------------------------------------------
# 2. Data: y = x*TRUE_W + TRUE_B + noise.
# ---------------------------------------------------------------------------
def make_data(num_examples, true_w, true_b, noise_std, seed):
    """Return x and y as float32 NumPy arrays of shape (num_examples,)."""
    # NumPy's seeded generator gives the same numbers on every machine, with or
    # without a GPU, so the data never depends on how TensorFlow runs.
    rng = np.random.default_rng(seed)
    # float32 on purpose. NumPy defaults to float64, and tf.Variable(5.0) is
    # float32; multiplying a float64 tensor by a float32 Variable raises
    # InvalidArgumentError rather than converting (test_mixing_float64_...).
    x = rng.standard_normal(num_examples, dtype=np.float32)
    noise = rng.standard_normal(num_examples, dtype=np.float32) * np.float32(noise_std)
    # The noise is why even W=3, b=2 do not give zero loss: no line passes
    # through every point, and the mean squared error at the true W and b is
    # the mean of noise**2, about noise_std**2.
    y = x * np.float32(true_w) + np.float32(true_b) + noise
    return x, y


# ---------------------------------------------------------------------------
# 3. Model: a tf.Module holding two tf.Variables.
# ---------------------------------------------------------------------------
class LinearModel(tf.Module):
    """f(x) = x*w + b, with w and b as trainable tf.Variables."""

    def __init__(self, initial_w, initial_b):
        super().__init__(name="linear_model")
        # Why tf.Variable, not tf.constant or a tensor: tensors are immutable,
        # and training must change w and b in place. A GradientTape watches
        # trainable Variables on its own; a constant gets no gradient unless
        # you call tape.watch on it (test_constant_is_not_watched...). A bias
        # made with tf.zeros(()) would be such a tensor, with no assign_sub
        # (test_a_bias_made_with_tf_zeros...). Python floats such as 5.0 make
        # float32 Variables, and tf.Module finds Variables stored as attributes:
        # model.trainable_variables lists both (test_model_holds_two_...).
        self.w = tf.Variable(initial_w, dtype=tf.float32, name="w")
        self.b = tf.Variable(initial_b, dtype=tf.float32, name="b")

    def __call__(self, x):
        return x * self.w + self.b


# ---------------------------------------------------------------------------
# 4. Loss: mean squared error.
# ---------------------------------------------------------------------------
def mean_squared_error(y_true, y_pred):
    """Mean of (y_true - y_pred)**2: one number that says how wrong we are."""
    # Target first, prediction second, as in Keras. tf.square squares each
    # error, so misses above and below the line both count, and big misses
    # count more. tf.reduce_mean averages over all examples into a scalar,
    # which is what the tape differentiates.
    return tf.reduce_mean(tf.square(y_true - y_pred))


# ---------------------------------------------------------------------------
# 5. One training step: forward pass on the tape, gradients, update.
# ---------------------------------------------------------------------------
def train_step(model, x, y, learning_rate):
    """Do one gradient-descent update of model.w and model.b in place.

    Returns the loss at the w and b the step started from.
    """
    # The tape records every operation on a watched Variable inside the
    # `with` block. The loss must be computed here: computed outside, the tape
    # never saw it and the gradient is None (test_loss_computed_outside_...).
    with tf.GradientTape() as tape:
        loss = mean_squared_error(y, model(x))
    # Ask for gradients after the block, so their own computation is not
    # recorded. A tape gives gradients once and then frees what it recorded; a
    # second call raises RuntimeError (test_tape_gives_gradients_once). For
    # this model the tape's answer equals the hand derivation
    #   dL/dW = -2*mean(x*(y - f(x))),  dL/db = -2*mean(y - f(x))
    # (test_tape_gradients_match_hand_derivation).
    dloss_dw, dloss_db = tape.gradient(loss, [model.w, model.b])
    # The gradient points uphill, toward larger loss, so step against it. The
    # learning rate sets the step size: too small and training crawls, too
    # large and each step overshoots further than the last (see
    # stability_limit). assign_sub changes the Variable in place; writing
    # `model.w = model.w - ...` instead would replace the Variable with a
    # plain tensor, and the next tape would give None for it
    # (test_assign_sub_updates_in_place_...).
    model.w.assign_sub(learning_rate * dloss_dw)
    model.b.assign_sub(learning_rate * dloss_db)
    return loss


# ---------------------------------------------------------------------------
# 6. tf.function: the same step, run as a graph.
# ---------------------------------------------------------------------------
def make_step(eager):
    """Return train_step itself (eager) or compiled with tf.function."""
    # Eager mode runs each operation as Python reaches it: easy to debug with
    # print() and pdb. tf.function instead runs the Python once, to trace the
    # operations into a graph, and every later call runs that graph without
    # going back to Python (test_tf_function_traces_once). The numbers are
    # the same (test_eager_and_tf_function_learn_the_same); the saving is the
    # Python overhead per step, which matters when the data is small. A new
    # input shape, dtype or Python value (such as another learning rate)
    # traces a new graph. To debug a tf.function, run `python main.py
    # --eager`, or call tf.config.run_functions_eagerly(True).
    return train_step if eager else tf.function(train_step)


# ---------------------------------------------------------------------------
# 7. The loop: one full-batch step per epoch, with a record of each epoch.
# ---------------------------------------------------------------------------
class EpochState(NamedTuple):
    """W and b after `epoch` updates, the loss at exactly those W and b, and
    the seconds the next step took (0.0 for the final state)."""

    epoch: int
    w: float
    b: float
    loss: float
    step_seconds: float


class TrainingResult(NamedTuple):
    history: list  # EpochState for epochs 0, 1, ..., up to the last reached
    diverged: bool  # True when training was stopped because the loss blew up


def has_diverged(loss, start_loss, divergence_factor):
    """True when the loss is not finite or far above where it started."""
    # At a stable learning rate, gradient descent on this loss never raises
    # the loss at all, so growing by a large factor can only mean divergence.
    return not math.isfinite(loss) or loss > divergence_factor * start_loss


def train(model, x, y, learning_rate, epochs, step, divergence_factor, report=None):
    """Run `epochs` full-batch steps; stop early if the loss diverges.

    Calls report(state) for each EpochState that has not diverged, as soon as
    it is known, so a report never shows a runaway or non-finite loss.
    """
    history = []

    def record(state):
        history.append(state)
        diverged = has_diverged(state.loss, history[0].loss, divergence_factor)
        if report is not None and not diverged:
            report(state)
        return diverged

    for epoch in range(epochs):
        # Read W and b before the step: the loss the step returns was computed
        # from exactly these values, so each row pairs W, b and their own loss.
        w, b = float(model.w.numpy()), float(model.b.numpy())
        start = time.perf_counter()
        # float() waits for the step to finish, so the time is the real cost.
        loss = float(step(model, x, y, learning_rate))
        seconds = time.perf_counter() - start
        if record(EpochState(epoch, w, b, loss, seconds)):
            return TrainingResult(history, diverged=True)
    # One more forward pass gives the loss at the final W and b.
    final_loss = float(mean_squared_error(y, model(x)))
    final = EpochState(
        epochs, float(model.w.numpy()), float(model.b.numpy()), final_loss, 0.0
    )
    return TrainingResult(history, diverged=record(final))


# ---------------------------------------------------------------------------
# 8. The exact answer, to check training against (NumPy, float64).
# ---------------------------------------------------------------------------
def least_squares(x, y):
    """Return (W, b) minimizing mean((y - (x*W + b))**2), exactly, in float64."""
    # Training minimizes the loss L(W, b) = mean((y - x*W - b)**2), and this
    # finds its minimum directly: where both derivatives are zero.
    #   dL/db = 0  gives  b = mean(y) - W*mean(x)
    #   dL/dW = 0  then gives  W = sum(xc*yc) / sum(xc*xc)
    # with xc = x - mean(x) and yc = y - mean(y). Gradient descent stops where
    # the gradient is zero, that is here: the best line for this sample of
    # noise, which is near W=3, b=2 but not on it (test_noise_floor...).
    # O(n) work with no Python loop, so even 10,000,000 examples take well
    # under a second.
    x64 = x.astype(np.float64)
    y64 = y.astype(np.float64)
    x_mean, y_mean = x64.mean(), y64.mean()
    x64 -= x_mean
    y64 -= y_mean
    w = float(np.dot(x64, y64) / np.dot(x64, x64))
    return w, float(y_mean - w * x_mean)


def loss_float64(x, y, w, b):
    """The same mean squared error as the loss, in float64 NumPy."""
    # The summary computes all three of its losses this way, so they compare
    # fairly: none carries float32 rounding that the others lack.
    residual = y.astype(np.float64)
    residual -= x.astype(np.float64) * w + b
    return float(np.dot(residual, residual) / residual.size)


def stability_limit(x):
    """Learning rates below this converge on this data; above it, diverge."""
    # The loss is a quadratic bowl in (W, b), so its Hessian (the matrix of
    # second derivatives) is the same everywhere:
    #   H = 2 * [[mean(x**2), mean(x)],
    #            [mean(x),    1      ]]
    # One step maps the distance to the minimum d to (I - learning_rate*H) d.
    # Along each eigenvector of H, with eigenvalue lam, that multiplies the
    # distance by (1 - learning_rate*lam) per step, which shrinks only when
    # 0 < learning_rate < 2/lam. Every direction must shrink, so the limit is
    # 2 / (largest eigenvalue). For x drawn from a standard normal, H is close
    # to 2*I and the limit is close to 1 (test_learning_rate_stability...).
    x64 = x.astype(np.float64)
    mean_x, mean_x2 = x64.mean(), np.dot(x64, x64) / x64.size
    hessian = 2.0 * np.array([[mean_x2, mean_x], [mean_x, 1.0]])
    return float(2.0 / np.linalg.eigvalsh(hessian).max())


# ---------------------------------------------------------------------------
# 9. Command line: try other settings without editing the code.
# ---------------------------------------------------------------------------
def checked(convert, accepts, is_valid):
    """An argparse type: convert the text, then reject what is out of range."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not is_valid(value):
            raise argparse.ArgumentTypeError(f"expected {accepts}, got {text!r}")
        return value

    return parse


def writable_png_path(text):
    """An argparse type: a .png path whose folder exists and can be written."""
    folder = os.path.dirname(os.path.abspath(text))
    if not text.lower().endswith(".png"):
        problem = "a file name ending in .png"
    elif os.path.isdir(text):
        problem = "a file name, not a folder"
    elif not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        problem = "a file in a folder that exists and can be written"
    else:
        return text
    raise argparse.ArgumentTypeError(f"expected {problem}, got {text!r}")


def import_pyplot():
    """Import matplotlib's pyplot for writing files, with no window needed."""
    # Imported here, not at the top: matplotlib is optional and only --plot
    # needs it.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def parse_args(
    argv,
    epochs=EPOCHS,
    learning_rate=LEARNING_RATE,
    num_examples=NUM_EXAMPLES,
    noise_std=NOISE_STD,
    seed=SEED,
):
    """Parse the command line; on bad input, print why and exit with status 2."""
    parser = argparse.ArgumentParser(
        prog="main.py",
        description="Fit f(x) = x*W + b to noisy data with a hand-written "
        "TensorFlow training loop, and compare with exact least squares.",
    )
    numbers = [
        # option, metavar, type, what it accepts, the check, default, meaning
        ("--epochs", "N", int, "an integer >= 1", lambda n: n >= 1, epochs,
         "full-batch updates to run"),
        ("--learning-rate", "LR", float, "a finite number > 0",
         lambda r: math.isfinite(r) and r > 0, learning_rate,
         "step size of each update"),
        ("--num-examples", "N", int, "an integer >= 2", lambda n: n >= 2,
         num_examples, "number of (x, y) examples"),
        ("--noise", "STD", float, "a finite number >= 0",
         lambda s: math.isfinite(s) and s >= 0, noise_std,
         "standard deviation of the noise on y"),
        ("--seed", "N", int, "an integer >= 0", lambda n: n >= 0, seed,
         "seed for the data"),
    ]  # fmt: skip
    for option, metavar, convert, accepts, is_valid, default, meaning in numbers:
        parser.add_argument(
            option,
            metavar=metavar,
            type=checked(convert, accepts, is_valid),
            default=default,
            help=f"{meaning}: {accepts} (default: %(default)s)",
        )
    parser.add_argument(
        "--eager",
        action="store_true",
        help="run the training step eagerly, without tf.function",
    )
    parser.add_argument(
        "--plot",
        metavar="PATH",
        type=writable_png_path,
        help="save a PNG figure of the data, the lines and the training curves "
        "(needs matplotlib)",
    )
    args = parser.parse_args(argv)
    if args.plot is not None:
        # Check now, not after a long training run.
        try:
            import_pyplot()
        except ImportError:
            parser.error(
                "argument --plot: needs matplotlib, which is not installed; "
                "install it with: pip install matplotlib"
            )
    return args


# ---------------------------------------------------------------------------
# 10. Output: a progress table, then learned vs least squares vs true.
# ---------------------------------------------------------------------------
def format_row(state):
    return f"{state.epoch:>7}  {state.w:>10.5f}  {state.b:>10.5f}  {state.loss:>12.5f}"


def format_summary_row(label, w, b, loss):
    return f"{label:<15}W={w:.5f}  b={b:.5f}  loss={loss:.5f}"


def table_printer(epochs, rows):
    """Return a report() for train() that prints about `rows` evenly spaced rows."""
    interval = max(1, math.ceil(epochs / rows))

    def report(state):
        if state.epoch % interval == 0 or state.epoch == epochs:
            print(format_row(state), flush=True)

    return report


def summary_lines(x, y, learned, fitted, truth, noise_std, tolerance, limit):
    """The closing lines: three comparable rows, then what they mean."""
    lines = [
        format_summary_row(label, w, b, loss_float64(x, y, w, b))
        for label, (w, b) in (
            ("learned", learned),
            ("least-squares", fitted),
            ("true", truth),
        )
    ]
    gap = max(abs(learned[0] - fitted[0]), abs(learned[1] - fitted[1]))
    if gap > tolerance:
        return lines + [
            f"Not converged: learned W and b are {gap:.1e} from least squares"
            + f" (more than {tolerance:g}).",
            "Try more --epochs, or a --learning-rate closer to, but below,",
            f"the stability limit {limit:.5f}.",
        ]
    lines.append(
        f"Converged: learned W and b are within {tolerance:g} of least squares"
        f" (gap {gap:.1e})."
    )
    if noise_std == 0:
        return lines + ["With no noise, the least-squares line is the true line."]
    return lines + [
        "Least squares is the best line for this sample. It differs from",
        "the true line because the noise in a finite sample does not",
        "average out to exactly zero.",
    ]


def divergence_lines(history, learning_rate, limit, divergence_factor):
    """What to print on stderr when training was stopped for diverging."""
    start, last = history[0], history[-1]
    growth = (
        f"the loss grew from {start.loss:.5g} to {last.loss:.5g}, over "
        f"{divergence_factor:g} times its start"
        if math.isfinite(last.loss)
        else f"the loss became {last.loss} (it started at {start.loss:.5g})"
    )
    return [
        f"Training diverged at epoch {last.epoch}: {growth}.",
        f"The learning rate {learning_rate:g} is too large for this data.",
        f"Gradient descent on it is stable only below {limit:.5f}: 2 divided by",
        "the largest eigenvalue of the loss's Hessian (see stability_limit).",
    ]


def timing_lines(history, seconds, eager, fit_seconds):
    """How long training and the exact fit took, from the clock."""
    steps = [state.step_seconds for state in history[:-1]]
    tracing = "" if eager else " (tracing the graph included)"
    first = f"Training took {seconds:.3f} s: epoch 1 took {steps[0] * 1e3:.2f} ms"
    lines = [first + tracing + ("," if len(steps) > 1 else ".")]
    if len(steps) > 1:
        later = sum(steps[1:]) / len(steps[1:])
        lines.append(f"then {later * 1e3:.3f} ms per epoch.")
    # Solving exactly is faster than training here. We train anyway because
    # the same loop works for models that have no exact formula.
    lines.append(f"The exact least-squares fit took {fit_seconds * 1e3:.2f} ms.")
    return lines


def header_lines(args, true_w, true_b, initial_w, initial_b, limit):
    """What is about to happen: the data, the start, and the step."""
    mode = "eagerly" if args.eager else "as a tf.function graph"
    epochs = f"{args.epochs} full-batch epoch" + ("s" if args.epochs > 1 else "")
    return [
        (
            f"Data: {args.num_examples:,} examples of y = {true_w:g}*x + {true_b:g}"
            f" + noise (noise std {args.noise:g}, seed {args.seed})."
        ),
        f"Training: {epochs} from W={initial_w:g}, b={initial_b:g}, step run {mode};",
        f"          learning rate {args.learning_rate:g} (stable below {limit:.5f}).",
        "",
        f"{'epoch':>7}  {'W':>10}  {'b':>10}  {'loss':>12}",
    ]


def save_plot(path, x, y, history, true_w, true_b, max_points):
    """Save a PNG: the data with both lines, and loss, W and b per epoch."""
    plt = import_pyplot()
    epochs = [state.epoch for state in history]
    final = history[-1]
    fig, (data_ax, loss_ax, param_ax) = plt.subplots(1, 3, figsize=(15, 4.5))
    # The examples are independent draws, so the first max_points of them are
    # already a fair random sample; drawing millions of dots would only blur.
    shown = slice(0, max_points)
    data_ax.scatter(x[shown], y[shown], s=4, alpha=0.4, label="data")
    ends = np.array([x.min(), x.max()])
    data_ax.plot(ends, ends * true_w + true_b, "k--", label="true line")
    data_ax.plot(ends, ends * final.w + final.b, "r-", label="learned line")
    data_ax.set(title="(a) data and lines", xlabel="x", ylabel="y")
    data_ax.legend()
    loss_ax.plot(epochs, [state.loss for state in history], label="loss")
    true_loss = loss_float64(x, y, true_w, true_b)
    loss_ax.axhline(true_loss, color="k", ls="--", label="loss at true W, b")
    loss_ax.set(title="(b) loss per epoch", xlabel="epoch", ylabel="MSE")
    loss_ax.legend()
    param_ax.plot(epochs, [state.w for state in history], "C0", label="W")
    param_ax.plot(epochs, [state.b for state in history], "C1", label="b")
    param_ax.axhline(true_w, color="C0", ls="--", label="true W")
    param_ax.axhline(true_b, color="C1", ls="--", label="true b")
    param_ax.set(title="(c) W and b per epoch", xlabel="epoch")
    param_ax.legend()
    fig.suptitle(f"learned W={final.w:.5f}, b={final.b:.5f}")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------
# 11. Putting it together.
# ---------------------------------------------------------------------------
def main(
    argv=None,
    true_w=TRUE_W,
    true_b=TRUE_B,
    initial_w=INITIAL_W,
    initial_b=INITIAL_B,
    table_rows=TABLE_ROWS,
    divergence_factor=DIVERGENCE_FACTOR,
    tolerance=CONVERGED_TOLERANCE,
    plot_points=PLOT_POINTS,
):
    """Train, print the table and the summary; return the exit status."""
    args = parse_args(argv)
    x, y = make_data(args.num_examples, true_w, true_b, args.noise, args.seed)
    limit = stability_limit(x)
    print("\n".join(header_lines(args, true_w, true_b, initial_w, initial_b, limit)))
    model = LinearModel(initial_w, initial_b)
    # Convert the data to tensors once. NumPy arrays passed to the step would
    # be converted again on every call: a copy of all the data per epoch.
    x_tensor, y_tensor = tf.constant(x), tf.constant(y)
    started = time.perf_counter()
    result = train(
        model,
        x_tensor,
        y_tensor,
        args.learning_rate,
        args.epochs,
        make_step(args.eager),
        divergence_factor,
        report=table_printer(args.epochs, table_rows),
    )
    seconds = time.perf_counter() - started
    if result.diverged:
        lines = divergence_lines(
            result.history, args.learning_rate, limit, divergence_factor
        )
        print("\n".join(lines), file=sys.stderr)
        return 1
    final = result.history[-1]
    started = time.perf_counter()
    fitted = least_squares(x, y)
    fit_seconds = time.perf_counter() - started
    learned = (final.w, final.b)
    lines = summary_lines(
        x, y, learned, fitted, (true_w, true_b), args.noise, tolerance, limit
    )
    lines += timing_lines(result.history, seconds, args.eager, fit_seconds)
    print("\n" + "\n".join(lines))
    if args.plot is not None:
        try:
            save_plot(args.plot, x, y, result.history, true_w, true_b, plot_points)
        except OSError as error:
            print(f"main.py: error: argument --plot: {error}", file=sys.stderr)
            return 2
        print(f"Saved the figure to {args.plot}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
