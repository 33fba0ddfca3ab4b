"""Fit f(x) = x*W + b by hand in TensorFlow 2, then see Keras's fit() do the same.

Read sections 1 to 9 in order; section 9, run(), is what `python main.py` runs.
After the banner (a line of ===) comes machinery you may skip: the command line,
the table, the verdict and the figure.

    python main.py            # train with the settings below; --help for options
    python main.py --keras    # then the same training through Keras's fit()
"""

import argparse
import math
import os
import sys
import textwrap
import time
from collections import namedtuple

# TensorFlow reads these two settings from the environment, so they are set before
# it is imported. The second makes it keep and reuse freed memory: on big data,
# where oneDNN (Intel's fast CPU routines) is off, an epoch is then twice as fast.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide most INFO and WARNING lines
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
import keras  # Keras 3, which comes with TensorFlow 2.16 and later
import numpy as np
import tensorflow as tf

# Settings to change. NUM_EXAMPLES to SEED are also options: python main.py --help
TRUE_W = 3.0  # slope that generates the data; training should come close
TRUE_B = 2.0  # intercept that generates the data
NUM_EXAMPLES = 1000  # number of (x, y) pairs
NOISE_STD = 1.0  # standard deviation of the noise added to each y
LEARNING_RATE = 0.1  # each update subtracts this times the gradient (section 4)
EPOCHS = 100  # passes over the data
BATCH_SIZE = None  # examples per update; None: all of them (section 6)
SEED = 42  # same seed, same data (NumPy promises so for one build and machine)
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
    """f(x) = x*w + b. tf.Module, TensorFlow's base class for models and their
    parts, finds the Variables stored on it: model.trainable_variables lists them."""

    def __init__(self, initial_w, initial_b):
        super().__init__(name="linear_model")
        # A tensor is TensorFlow's array, and it cannot change once made. A
        # tf.Variable holds a value that can change, as training needs for w and b.
        # Variables are trainable unless made with trainable=False, and gradient
        # tapes (section 4) watch the trainable ones.
        self.w = tf.Variable(initial_w, dtype=tf.float32, name="w")
        self.b = tf.Variable(initial_b, dtype=tf.float32, name="b")

    def __call__(self, x):
        return x * self.w + self.b


# 3. Loss: mean squared error. ----------------------------------------------------
def mean_squared_error(y_true, y_pred):
    """The loss: mean of (y_true - y_pred)**2, one number for how wrong we are."""
    # Target first, as Keras's losses take them. tf.square counts misses above and
    # below the line alike, and big misses more. tf.reduce_mean averages them. Even
    # the true line misses each y by its noise, so its loss is about noise_std**2.
    return tf.reduce_mean(tf.square(y_true - y_pred))


# 4. One training step: predictions and loss on a tape, gradients, update. --------
def train_step(model, x, y, learning_rate):
    """Update model.w and model.b in place; return the loss from before the update."""
    # A GradientTape records the operations run inside its `with` block, so the
    # loss is computed there. The tape watches the trainable Variables those
    # operations use, and a plain tensor only after tape.watch(tensor).
    with tf.GradientTape() as tape:
        loss = mean_squared_error(y, model(x))
    # The gradient is the pair of partial derivatives (dL/dW, dL/db), L being the
    # loss: how fast L changes as W alone, or b alone, changes. By the chain rule,
    # d/dW (y - (x*W + b))**2 = -2*x*(y - (x*W + b)), so dL/dW =
    # -2*mean(x*(y - f(x))), and likewise dL/db = -2*mean(y - f(x)). The tape
    # computes the same numbers from its record. Ask it after the block, and once:
    # a second call raises RuntimeError (README's FAQ: when the answer is None).
    dloss_dw, dloss_db = tape.gradient(loss, [model.w, model.b])
    # The gradient points uphill, so step against it: subtract learning_rate times
    # the gradient. That is gradient descent. Too large a rate overshoots (section
    # 7). assign_sub changes the Variable in place. `model.w = model.w - ...` would
    # instead put a plain tensor in its place, which no tape watches: the next
    # gradient for it would be None.
    model.w.assign_sub(learning_rate * dloss_dw)
    model.b.assign_sub(learning_rate * dloss_db)
    return loss


# 5. tf.function: the same step, run as a graph. ----------------------------------
def make_step(eager=False, jit_compile=False):
    """Return train_step itself (eager), or wrapped by tf.function (a graph)."""
    # Eager mode, TensorFlow's default, runs each operation as Python reaches it:
    # easy to debug with print() and pdb (Python's debugger). tf.function instead
    # runs the Python once, recording ("tracing") the operations it calls into a
    # graph, a fixed plan that TensorFlow then runs without the Python: the same
    # results, to float32 rounding, with less Python per step. Inputs of a new
    # shape or dtype, or a new Python value such as another learning rate, trace
    # again. To debug, run with --eager. jit_compile=True also has XLA,
    # TensorFlow's compiler, fuse the graph's operations into fewer passes.
    return train_step if eager else tf.function(train_step, jit_compile=jit_compile)


# 6. The loop: epochs of batches. -------------------------------------------------
# An epoch is one pass over the data. The data is cut into batches of batch_size
# examples, in order, and each batch gets one step. With one batch of all the data
# ("full batch", the default), every step follows the exact gradient. Smaller
# batches take more, cheaper steps, each following only its own batch's gradient.
# That is mini-batch gradient descent, which Keras's fit() does by default.
def batches_of(x, y, batch_size):
    """x and y cut, in order, into (x, y) batches; the last may be smaller."""
    # NumPy slices cost nothing, and a tf.function converts them at each call. One
    # batch of all the data is made a tensor (tf.constant) once, here.
    if batch_size >= len(x):
        return [(tf.constant(x), tf.constant(y))]
    starts = range(0, len(x), batch_size)
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in starts]


def train(model, batches, learning_rate, epochs, step, report):
    """Run `epochs` epochs of step() over the batches. report(epoch, batch, model,
    loss) is called at the start (epoch 0, batch 0) and after each step. main.py's
    prints the table (its loss is computed exactly, in float64 by NumPy) and
    returns True, which stops training, when the loss blows up."""
    report(0, 0, model, None)
    for epoch in range(1, epochs + 1):
        for batch, (batch_x, batch_y) in enumerate(batches, start=1):
            loss = step(model, batch_x, batch_y, learning_rate)
            if report(epoch, batch, model, loss):
                return


# 7. The exact answer, and which learning rates work. -----------------------------
# Training stops where the gradient is 0. Setting section 4's two derivatives to 0
# gives two equations, linear in W and b:
#     mean(x*x)*W + mean(x)*b = mean(x*y)
#     mean(x)*W   +         b = mean(y)
# NumPy solves them in float64 (about 16 digits). Their answer, least squares, is
# the best line for this sample: near W=3, b=2, but not on it, as a sample's noise
# does not cancel out exactly. Full-batch training at a good rate ends there.
def least_squares(means):
    """The (W, b) where the gradient is 0; means: the data's mean(x), mean(x*x),
    mean(x*y), mean(y) and mean(y*y), which main.py computes once, in float64."""
    mean_x, mean_xx, mean_xy, mean_y, _ = means
    return np.linalg.solve([[mean_xx, mean_x], [mean_x, 1]], [mean_xy, mean_y])


# Which rates work. With x from N(0, 1), mean(x*x) is about 1 and mean(x) about 0,
# so the derivatives are about dL/dW = 2*(W - W*) and dL/db = 2*(b - b*), where
# (W*, b*) is least squares. A step then multiplies each distance, W - W* and
# b - b*, by 1 - 2*rate: it shrinks for rates below 1 (changing sign each step
# above 0.5), is gone in one step at 0.5, and above 1 grows: training diverges.
# Exactly, the two 2s are lam_min and lam_max, the loss's second derivatives along
# its two main axes (the eigenvalues of its matrix of second derivatives). So a step
# multiplies the distance by at most `factor` below, steps shrink it for rates
# below 2/lam_max ("stable below"), and 2/(lam_min + lam_max) ("balanced") gives
# the smallest factor. With batches, each step has its own batch's lam.
def rates(mean_x, mean_xx, rate):
    """(stable below, balanced, factor at this rate), from one batch's means or
    from arrays of them, a batch each."""
    spread = np.sqrt((mean_xx - 1) ** 2 + 4 * mean_x**2)  # a 2x2 matrix's formula
    lam_min, lam_max = mean_xx + 1 - spread, mean_xx + 1 + spread
    factor = np.maximum(abs(1 - rate * lam_min), abs(1 - rate * lam_max))
    return 2 / lam_max, 2 / (lam_min + lam_max), factor


# 8. The bridge to Keras: the same training through compile() and fit(). ---------
class KerasLine(keras.Model):
    """The same f(x) = x*w + b as a Keras model."""

    def __init__(self, initial_w, initial_b):
        super().__init__()
        # add_weight, not tf.Variable. TensorFlow's "Basic training loops" guide
        # stores a keras.Model's weights as tf.Variable attributes, but Keras 3
        # does not track those: they stay out of trainable_weights (Keras's name
        # for trainable_variables), the list fit() trains, so fit() trains
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
    # updates) and the loss ("mse" is mean_squared_error). SGD is stochastic
    # gradient descent: with its default momentum of 0, it subtracts learning_rate
    # times the gradient, as train_step's assign_sub does. For each batch, fit()
    # then runs Keras's own step, as a tf.function (README's FAQ runs one by hand):
    #     with tf.GradientTape() as tape:
    #         loss = the compiled loss of (y, model(x))
    #     gradients = tape.gradient(loss, model.trainable_weights)
    #     optimizer.apply_gradients(zip(gradients, model.trainable_weights))
    # jit_compile=False keeps XLA out, as make_step does by default.
    sgd = keras.optimizers.SGD(learning_rate)
    model.compile(optimizer=sgd, loss="mse", jit_compile=False)
    # fit()'s default is batches of 32, with the examples shuffled every epoch. The
    # same batches in order (shuffle=False) are train()'s steps: the same W and b
    # after each epoch, to float32 rounding. verbose=0 hides fit()'s progress bar.
    options = {"batch_size": batch_size, "shuffle": False, "verbose": 0} | fit_options
    model.fit(x, y, epochs=epochs, **options)
    return float(model.w), float(model.b)


class ReportEachEpoch(keras.callbacks.Callback):
    """fit() calls its callbacks' methods at set points. This one passes the table
    (Progress, below) each epoch's end, with the loss fit() reports for it."""

    def __init__(self, progress):
        super().__init__()
        self.progress = progress

    def on_train_begin(self, logs=None):  # self.model: the model fit() trains
        self.progress.epoch_done(0, self.model, None)  # where training starts

    def on_epoch_end(self, epoch, logs=None):  # fit() counts epochs from 0
        self.progress.epoch_done(epoch + 1, self.model, logs["loss"])


# 9. All together: what `python main.py` runs. ------------------------------------
def run(args):
    """Sections 1 to 8 put together, with the table, the verdict and the figure
    from the machinery below; return the exit status."""
    x, y = make_data(args.num_examples, TRUE_W, TRUE_B, args.noise, args.seed)
    model = LinearModel(*INITIAL)  # TensorFlow's start-up lines print here
    step = make_step(args.eager, args.jit_compile)
    batch_size = min(args.batch_size or len(x), len(x))
    batches = batches_of(x, y, batch_size)
    facts = learning_rate_facts(x, y, batch_size, args.learning_rate)  # below
    print_header(args, facts)
    table = Progress(args.epochs, facts, "batch mean" if args.keras else None)
    train(model, batches, args.learning_rate, args.epochs, step, report=table)
    status = conclude(args, table, facts)  # the summary and the verdict
    if args.keras and status == 0:
        fit_and_compare(args, x, y, batch_size, facts, table.last)
    if args.plot is not None and not save_figure(args.plot, x, y, table, facts):
        return 2
    return status


# ==================================================================================
# The rest is machinery you may skip: the command line, the table, the verdict and
# the figure.
# ==================================================================================
TABLE_ROWS = 10  # the table shows every ceil(epochs/TABLE_ROWS)-th epoch, the last
PROGRESS_SECONDS = 3.0  # on a long run, also a row at least this often
PLOT_POINTS = 2000  # most points drawn per curve by --plot; more only blurs
PATH_STEPS = 200  # updates drawn as a path on the loss contours by --plot
OPTIONS = [  # the number options: name, default, lowest, highest, what it accepts
    ("epochs", EPOCHS, 1, 1e15, "an integer from 1 to 1e15"),
    ("learning-rate", LEARNING_RATE, math.ulp(0), 1e15, "a number > 0, up to 1e15"),
    ("num-examples", NUM_EXAMPLES, 2, 1e15, "an integer from 2 to 1e15"),
    ("batch-size", BATCH_SIZE, 1, 1e15, "an integer from 1 to 1e15"),
    ("noise", NOISE_STD, 0, 1e9, "a number from 0 to 1e9"),
    ("seed", SEED, 0, 1e15, "an integer from 0 to 1e15"),
]
Row = namedtuple("Row", "epoch w b loss batch_loss")  # a row of the table


def option_type(lowest, highest, accepts):
    """An argparse type: the text as the number `accepts` describes, or refused."""

    def convert(text):
        try:  # float reads 1e15 too, and holds every integer up to 2**53 exactly
            value = float(text)
        except ValueError:
            value = math.nan  # fails the test below
        integer = accepts.startswith("an integer")
        if not lowest <= value <= highest or (integer and not value.is_integer()):
            raise argparse.ArgumentTypeError(f"expected {accepts}, got {text!r}")
        return int(value) if integer else value

    return convert


def parse_args(argv):
    """Parse and check the command line; on bad input, exit with status 2."""
    parser = argparse.ArgumentParser(prog="main.py")
    for name, default, *limits in OPTIONS:
        shown = "all examples" if default is None else default
        kind = option_type(*limits)
        usage = f"{limits[-1]} (default: {shown})"
        parser.add_argument(f"--{name}", type=kind, default=default, help=usage)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--eager", action="store_true", help="run the step eagerly")
    mode.add_argument("--jit-compile", action="store_true", help="compile with XLA")
    parser.add_argument("--keras", action="store_true", help="then train with fit()")
    parser.add_argument("--plot", metavar="PATH", help="save a PNG (needs matplotlib)")
    args = parser.parse_args(argv)
    if args.plot is not None and not args.plot.lower().endswith(".png"):
        parser.error(f"argument --plot: expected a .png file name, got {args.plot!r}")
    try:
        if args.plot is not None:
            import matplotlib  # noqa: F401  (optional: only --plot needs it)
    except ImportError:
        parser.error("argument --plot: needs matplotlib: pip install matplotlib")
    return args


# The loss is quadratic in W and b. Expanding the square, it is W*W*mean(x*x)
# + 2*W*b*mean(x) - 2*W*mean(x*y) + b*b - 2*b*mean(y) + mean(y*y): five means give
# it at any W and b with no pass over the data. NumPy computes them once, in
# float64, for each batch; the data's are their average, weighted by batch size.
def batch_means(x, y, batch_size):
    """Each batch's five means (a column per batch), and the batch sizes."""
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    starts = np.arange(0, len(x), batch_size)
    sizes = np.diff(np.append(starts, len(x)))
    products = [x64, x64 * x64, x64 * y64, y64, y64 * y64]
    # np.add.reduceat sums each product from each batch's start to the next.
    return np.array([np.add.reduceat(p, starts) for p in products]) / sizes, sizes


def loss_at(means, w, b):
    """mean((y - (x*w + b))**2) from the data's five means."""
    mean_x, mean_xx, mean_xy, mean_y, mean_yy = means
    with_w = w * w * mean_xx + 2 * w * b * mean_x - 2 * w * mean_xy
    return with_w + b * b - 2 * b * mean_y + mean_yy


# What the table and the verdict need: the data's means, the batch sizes, least
# squares, and section 7's rates: the smallest limit of any batch; with one batch,
# also the balanced rate and the factor (else None).
Facts = namedtuple("Facts", "means sizes fitted stable balanced factor")


def learning_rate_facts(x, y, batch_size, learning_rate):
    """Facts for this data, batch size and learning rate."""
    by_batch, sizes = batch_means(x, y, batch_size)
    means = by_batch @ sizes / len(x)
    stable, balanced, factor = rates(by_batch[0], by_batch[1], learning_rate)
    fitted = least_squares(means)
    if len(sizes) > 1:  # each batch has its own balanced rate and factor
        return Facts(means, sizes, fitted, float(min(stable)), None, None)
    one_batch = (float(stable[0]), float(balanced[0]), float(factor[0]))
    return Facts(means, sizes, fitted, *one_batch)


class Progress:
    """train()'s report, and fit()'s through ReportEachEpoch: prints the table, and
    keeps what the verdict and the figure need, in memory flat in --epochs."""

    def __init__(self, epochs, facts, batch_loss_title=None):
        self.epochs = epochs
        self.facts = facts
        self.title = batch_loss_title  # heads a column of each epoch's batch loss
        self.kept = []  # every ceil(epochs / PLOT_POINTS)-th Row, for the figure
        self.path = []  # W and b at the start and after each of the first steps
        self.last = None  # the last Row
        self.diverged = None  # the Row whose loss blew up, if any
        self.loss_sum = 0.0  # this epoch's batch losses so far, times batch sizes
        self.started = time.perf_counter()
        self.epoch_1_done = self.started  # when epoch 1 ended, for timing()
        self.printed = self.started  # when the last row was printed
        title = f"  {batch_loss_title:>12}" if batch_loss_title else ""
        print(f"{'epoch':>7}  {'W':>10}  {'b':>10}  {'loss':>12}{title}")

    def __call__(self, epoch, batch, model, loss):
        """train()'s report(): True (stop) if the epoch it ends blew up."""
        if len(self.path) <= PATH_STEPS:
            self.path.append((float(model.w), float(model.b)))
        if batch == 0:
            return self.epoch_done(0, model, None)
        sizes = self.facts.sizes
        self.loss_sum += float(loss) * sizes[batch - 1]
        if batch == len(sizes):  # the mean of its batch losses, as fit() reports
            batch_loss = self.loss_sum / sizes.sum()
            self.loss_sum = 0.0
            return self.epoch_done(epoch, model, batch_loss)
        if time.perf_counter() - self.printed >= PROGRESS_SECONDS:  # a long epoch:
            w, b = float(model.w), float(model.b)  # a row part way through it
            self.print_row(epoch - 1 + batch / len(sizes), w, b, None)
        return False

    def epoch_done(self, epoch, model, batch_loss):
        """Keep the Row at an epoch's end: W, b and the loss there. True (stop) if
        that loss is not finite or is over 10 times its start: a converging loss
        does not grow."""
        w, b = float(model.w), float(model.b)
        row = Row(epoch, w, b, float(loss_at(self.facts.means, w, b)), batch_loss)
        start = self.kept[0].loss if self.kept else math.inf
        if not math.isfinite(row.loss) or row.loss > 10 * start:
            self.diverged = row
            return True
        self.last = row
        if epoch == 1:
            self.epoch_1_done = time.perf_counter()
        if epoch % math.ceil(self.epochs / PLOT_POINTS) == 0 or epoch == self.epochs:
            self.kept.append(row)
        due = epoch % math.ceil(self.epochs / TABLE_ROWS) == 0 or epoch == self.epochs
        if due or time.perf_counter() - self.printed >= PROGRESS_SECONDS:
            self.print_row(epoch, w, b, batch_loss if self.title else None, row.loss)
        return False

    def print_row(self, epoch, w, b, batch_loss, loss=None):
        """A row: W, b and the loss there; epoch 2.5 is half way through the third."""
        loss = loss_at(self.facts.means, w, b) if loss is None else loss
        cells = [f"{number(w, 10):>10}", f"{number(b, 10):>10}", f"{number(loss):>12}"]
        cells += [] if batch_loss is None else [f"{number(batch_loss):>12}"]
        place = f"{epoch:>7}" if epoch == int(epoch) else f"{epoch:>7.3f}"
        print("  ".join([place, *cells]))
        self.printed = time.perf_counter()

    def timing(self, tracing):
        """How long train() took, its first epoch (with any tracing) apart."""
        total = self.printed - self.started
        first = self.epoch_1_done - self.started
        line = f"Training took {total:.3f} s: epoch 1 took {first:.3f} s"
        line += " (tracing included)" if tracing else ""
        if self.last.epoch == 1:
            return line + "."
        each = (total - first) / (self.last.epoch - 1) * 1e3
        return line + f",\nthen {each:.3f} ms per epoch."


# How a run ended. float32 numbers near v are about eps*|v| apart (eps, about
# 1.2e-7, is the gap after 1), and at a good rate training stops a few such gaps
# from least squares: so it counts as converged within 32 gaps, or 1e-4 if that is
# more. Near least squares, a full-batch step shrinks the distance d by about
# (1 - factor)*d in the slowest direction. Once that is less than half a gap, the
# update rounds away: below the balanced rate, training stops about `floor` from
# least squares; above it, d swings across least squares, and rounding can lock it
# into a two-step swing anywhere up to `floor` from it.
def how_it_ended(facts, table, learning_rate):
    """A dict: the run's `outcome` (a key of VERDICTS), and the numbers it quotes."""
    row = table.diverged or table.last
    eps = np.finfo(np.float32).eps
    tolerance = float(f"{max(1e-4, 32 * eps * max(abs(facts.fitted))):.2g}")
    gap = distance(row[1:3], facts.fitted)
    told = {"epoch": row.epoch, "gap": gap, "tolerance": tolerance}
    told |= {"factor": facts.factor, "advice": rate_advice(learning_rate, facts)}
    told |= {"limit": above_limit(learning_rate, facts)}
    if not math.isfinite(row.loss):
        names = " and ".join(n for n, v in zip("Wb", row[1:3]) if not math.isfinite(v))
        return told | {"outcome": "overflowed", "names": names}
    if table.diverged:
        start = table.kept[0].loss
        return told | {"outcome": "diverged", "start": start, "loss": row.loss}
    if told["limit"]:  # one batch, at or above its stability limit
        return told | {"outcome": "grows", "epochs": counted(row.epoch, "epoch")}
    if gap <= tolerance:
        exact = distance(facts.fitted, (TRUE_W, TRUE_B)) <= tolerance
        return told | {"outcome": "exact" if exact else "converged"}
    if facts.balanced is None:
        return told | {"outcome": "batches"}
    spacing = float(max(np.spacing(np.float32(np.abs(facts.fitted)))))
    floor = spacing / (2 * max(1 - facts.factor, 1e-300))
    if floor >= tolerance:
        swings = learning_rate > facts.balanced
        can = "may not" if swings else "cannot"
        return told | {"outcome": "floor", "floor": floor, "can": can}
    # Each epoch multiplies the distance by at most the factor, and rounding keeps
    # it within about `floor` of that.
    more = math.log((tolerance - floor) / gap) / math.log(facts.factor)
    return told | {"outcome": "slow", "epochs": row.epoch + math.ceil(more)}


def distance(point, other):
    """The straight-line distance between two (W, b) points."""
    return math.hypot(point[0] - other[0], point[1] - other[1])


# The verdict on each outcome of how_it_ended(), filled in from the dict it returns.
# Those in CANNOT_CONVERGE go to standard error, with exit status 1.
HEAD = "W and b are {gap:.1e} from least squares (tolerance {tolerance:g}).\n"
VERDICTS = {
    "converged": "Converged: " + HEAD + "Least squares is the best line for this"
    " sample. It differs from the true line because a finite sample's noise does"
    " not cancel out exactly.",
    "exact": "Converged: " + HEAD + "Least squares is the true line here: no noise,"
    " or too little to move it.",
    "floor": "Not converged: " + HEAD + "At this rate, float32 rounding stops W and b"
    " short of the tolerance: an update less than half the gap between float32"
    " numbers rounds away. More --epochs {can} reach it.\nUse {advice}.",
    "slow": "Not converged: " + HEAD + "More epochs bring W and b closer: each"
    " multiplies the distance by at most {factor:.6g}, so --epochs {epochs} would"
    " reach the tolerance.",
    "batches": "Not converged: " + HEAD + "Each update follows its own batch's"
    " gradient, not all the data's, so W and b need not end at least squares"
    " (README's Mini-batches section says where they end).",
    "overflowed": "Training diverged at epoch {epoch}: {names} overflowed float32."
    "{limit}\nUse {advice}.",
    "diverged": "Training diverged at epoch {epoch}: the loss grew from {start:.5g}"
    " to {loss:.5g}, over 10 times its start.{limit}\nUse {advice}.",
    "grows": "Training cannot converge, though in {epochs} its loss has not grown past"
    " 10 times its start.{limit}\nUse {advice}.",
}
CANNOT_CONVERGE = {"overflowed", "diverged", "grows"}


def above_limit(learning_rate, facts):
    """With one batch, at a rate not below the stability limit: why it cannot
    converge, and how fast it grows. Otherwise ""."""
    if facts.balanced is None or learning_rate < facts.stable:
        return ""
    limit = rounded_down(facts.stable)
    times = f"{facts.factor:.6g}"
    times = f"{facts.factor:.12g}" if times == "1" else times  # show it is not 1
    return (
        f"\nThe learning rate {learning_rate:g} is not below the stability limit"
        f" {limit}: in the long run, each epoch multiplies the distance from least"
        f" squares by {times}."
    )


def conclude(args, table, facts):
    """Print the summary and the verdict; return the exit status: 1 if the run
    cannot converge, else 0."""
    ended = how_it_ended(facts, table, args.learning_rate)
    verdict = wrapped(VERDICTS[ended["outcome"]].format(**ended))
    if ended["outcome"] in CANNOT_CONVERGE:
        print(verdict, file=sys.stderr)
        not_run = "keras fit() was not run: it would take the same steps."
        if args.keras:
            print(not_run, file=sys.stderr)
        return 1
    learned = ("learned", table.last.w, table.last.b)
    fitted = ("least-squares", *facts.fitted)
    print(summary(facts, [learned, fitted, ("true", TRUE_W, TRUE_B)]))
    print(verdict)
    print(table.timing(tracing=not args.eager))
    return 0


def rate_advice(learning_rate, facts):
    """The advice on the rate: toward balanced, or with batches, below the limit."""
    if facts.balanced is None:
        limit = rounded_down(facts.stable)
        return f"a smaller --learning-rate (every step is stable below {limit})"
    toward = "smaller" if learning_rate > facts.balanced else "larger"
    return f"a {toward} --learning-rate (balanced {facts.balanced:.5f})"


def wrapped(text):
    """Each line of the text wrapped to 80 columns."""
    return "\n".join(textwrap.fill(line, 80) for line in text.split("\n"))


def rounded_down(limit):
    """The limit to 5 decimals, rounded down: a rate typed back is below it too."""
    return f"{math.floor(limit * 1e5) / 1e5:.5f}"


def counted(n, noun):
    """'1 epoch', '1,000 epochs'."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def number(value, width=12):
    """5 decimals, or e-notation where that would be wider than `width`."""
    text = f"{value:.5f}"
    return text if len(text) <= width else f"{value:.{width - 7}e}"


def summary(facts, rows):
    """A line per (label, W, b), each with the loss there."""
    lines = [""]
    for label, w, b in rows:
        loss = number(loss_at(facts.means, w, b))
        lines.append(f"{label:<15}W={number(w)}  b={number(b)}  loss={loss}")
    return "\n".join(lines)


def print_header(args, facts):
    """What the run will do."""
    sizes = facts.sizes
    limit = f"stable below {rounded_down(facts.stable)}"
    if len(sizes) == 1:
        passes = counted(args.epochs, "full-batch epoch")
        rates = f"{limit}, balanced {facts.balanced:.5f}"
    else:
        passes = (
            f"{counted(args.epochs, 'epoch')} of {len(sizes):,} batches of {sizes[0]:,}"
        )
        passes += " (the last smaller)" if sizes[-1] < sizes[0] else ""
        rates = f"{limit} for every batch's step"
    mode = "eagerly" if args.eager else "as a tf.function graph"
    mode += " compiled by XLA" if args.jit_compile else ""
    data = f"y = {TRUE_W:g}*x + {TRUE_B:g} + noise (noise std {args.noise:g}"
    print(f"Data: {args.num_examples:,} examples of {data}, seed {args.seed}).")
    print(f"Training: {passes} from W={INITIAL[0]:g}, b={INITIAL[1]:g},")
    print(f"          step run {mode},")
    print(f"          learning rate {args.learning_rate:g} ({rates}).\n")


def fit_and_compare(args, x, y, batch_size, facts, hand):
    """The same training with fit(), its table from a callback; does it agree?"""
    print("\nThe same training with Keras's compile() and fit():\n")
    table = Progress(args.epochs, facts, "fit() loss")
    rate, epochs = args.learning_rate, args.epochs
    fit = fit_with_keras(
        x, y, rate, epochs, batch_size, INITIAL, callbacks=[ReportEachEpoch(table)]
    )
    difference = distance(fit, (hand.w, hand.b))
    same = difference <= 1e-5 * max(1, abs(hand.w), abs(hand.b))
    print(summary(facts, [("keras fit()", *fit)]))
    agrees = "agrees with" if same else "DIFFERS from"
    print(f"keras fit() {agrees} the hand loop: W and b differ by {difference:.1e}.")
    took = f"{time.perf_counter() - table.started:.3f} s"
    print(f"fit() took {took} for {counted(epochs, 'epoch')}, tracing included.")


def save_figure(path, x, y, table, facts):
    """Save the figure; True, or False after one line if it cannot be written."""
    try:
        draw(path, x, y, table.kept, np.array(table.path), facts)
    except OSError as error:  # say, a full disk, or no such folder
        where = f"argument --plot: cannot write {path!r}: {error.strerror}"
        print(f"main.py: error: {where}", file=sys.stderr)
        return False
    print(f"Saved the figure to {path}.")
    return True


def draw(path, x, y, kept, walk, facts):
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
    loss_ax.axhline(loss_at(facts.means, TRUE_W, TRUE_B), color="k", ls="--")
    loss_ax.legend(["loss (MSE)", "loss at true W, b"])
    walk = walk[np.isfinite(walk).all(axis=1)]  # a diverged run's last may not be
    half = 1.1 * np.abs(walk - facts.fitted).max() + 0.1  # the whole path, and room
    grid = np.meshgrid(*(np.linspace(c - half, c + half, 101) for c in facts.fitted))
    bowl = loss_at(facts.means, *grid)
    # The loss grows as the square of the distance from its bottom, so levels spaced
    # as squares draw evenly spaced rings.
    levels = bowl.min() + (bowl.max() - bowl.min()) * np.linspace(0, 1, 16)[1:] ** 2
    bowl_ax.contour(*grid, bowl, levels, colors="0.7")
    bowl_ax.plot(walk[:, 0], walk[:, 1], "r.-", ms=3, lw=0.8)
    bowl_ax.plot(*facts.fitted, "k*", ms=10)
    bowl_ax.legend([f"W, b: first {len(walk) - 1} updates", "least squares"])
    data_ax.set(title="(a) data and lines", xlabel="x", ylabel="y")
    loss_ax.set(title="(b) loss per epoch", xlabel="epoch")
    bowl_ax.set(title="(c) loss contours, path", xlabel="W", ylabel="b", aspect=1)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)


def main(argv=None):
    """Run the command line; return the exit status."""
    if hasattr(sys.stdout, "reconfigure"):  # a file, not a notebook's stream
        # Line by line, so that a closed pipe shows at once; unprintable text escaped.
        sys.stdout.reconfigure(line_buffering=True, errors="backslashreplace")
    try:
        args = parse_args(argv)
        return run(args)
    except SystemExit as exit_:  # argparse exits this way on bad input and --help
        return exit_.code
    except (MemoryError, tf.errors.ResourceExhaustedError):
        examples = f"{args.num_examples:,} examples do not fit in memory; try fewer"
        print(f"main.py: error: argument --num-examples: {examples}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("main.py: stopped by Ctrl-C.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the output's reader (as in `| head`) has exited
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no retry
        return 141


if __name__ == "__main__":
    sys.exit(main())
