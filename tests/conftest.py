"""Shared pieces for the tests: import main.py once, and train it once."""

import os
import re
import signal
import subprocess
import sys
import threading

import pytest

# main.py lives one folder up; make it importable however pytest is started.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import main  # after the line above; this imports TensorFlow once per session


def pytest_configure(config):
    # On Python 3.13, gast (which TensorFlow's autograph uses to rewrite a
    # tf.function's Python) passes ast nodes a keyword that Python deprecates,
    # and the summary would end with over a hundred copies of this warning. It is
    # gast's to fix and changes nothing here; every other warning still shows.
    config.addinivalue_line(
        "filterwarnings",
        "ignore:.* got an unexpected keyword argument '___pyct_anno'"
        ":DeprecationWarning:gast",
    )
    # Likewise on Python 3.10, where pip picks Keras 3.12 with NumPy 2.2: Keras
    # converts tensors with np.array(), and NumPy 2 warns about how the tensor
    # type implements __array__. Keras's and TensorFlow's to fix; harmless here.
    config.addinivalue_line(
        "filterwarnings",
        "ignore:__array__ implementation doesn't accept a copy keyword"
        ":DeprecationWarning:keras",
    )


def pytest_collection_modifyitems(items):
    # Tests that read a BACKGROUND process (below) run last, so that the other
    # tests run while those processes start TensorFlow, instead of waiting.
    reads_background = {"interrupted_run", "after_import_run"}
    items.sort(key=lambda item: bool(reads_background & set(item.fixturenames)))


def train_fresh_model(
    x, y, learning_rate, epochs, start=None, batch_size=None, **modes
):
    """Train a new model as main.run() does, its table included; return (history,
    diverged): the table's kept Rows, then the one that blew up, if any."""
    batch_size = batch_size or len(x)
    model = main.LinearModel(*(start or main.INITIAL))
    facts = main.learning_rate_facts(x, y, batch_size, learning_rate)
    table = main.Progress(epochs, facts)  # its rows go to pytest's capture
    batches = main.batches_of(x, y, batch_size)
    main.train(model, batches, learning_rate, epochs, main.make_step(**modes), table)
    diverged = table.diverged is not None
    return table.kept + [table.diverged] * diverged, diverged


@pytest.fixture(scope="session")
def train_on():
    """train_fresh_model, for tests that train with their own settings."""
    return train_fresh_model


@pytest.fixture(scope="session")
def default_data():
    """The data main.py trains on by default."""
    return main.make_data(
        main.NUM_EXAMPLES, main.TRUE_W, main.TRUE_B, main.NOISE_STD, main.SEED
    )


@pytest.fixture(scope="session")
def default_run(default_data):
    """One training run with every default setting: (history, diverged)."""
    return train_fresh_model(*default_data, main.LEARNING_RATE, main.EPOCHS)


def start_python(*argv, stderr=subprocess.PIPE):
    """Start `python ARGV...` in the repository, with pipes for its output.

    TF_CPP_MIN_LOG_LEVEL is removed from its environment, so the tests see what
    main.py's own setting does, whatever the shell running the tests has set.
    """
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.Popen(
        [sys.executable, *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


@pytest.fixture(scope="session")
def python_started():
    """start_python, for tests that start their own short process."""
    return start_python


def finished(process):
    """Wait for a started process; return (exit status, stdout, stderr)."""
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


# Processes that import TensorFlow take seconds to start. These start when the
# test session does, so that their start-up overlaps the other tests.
BACKGROUND = {
    # `python main.py` as a learner runs it, long enough (seconds) to be stopped
    # with Ctrl-C after its row at epoch 2000, with standard error merged into
    # standard output in the order they were written, as a terminal shows.
    "long": (
        ["main.py", "--epochs", "20000", "--num-examples", "10"],
        subprocess.STDOUT,
    ),
    # One process for two proofs, to spare the suite a third TensorFlow start-up.
    # First TensorFlow's start-up lines with the log level set only after the
    # import; then main.py run as `python main.py --epochs 5000 | head -6` would:
    # its standard output is closed (below) once the table's header is out.
    "after_import": (
        [
            "-c",
            (
                "import os, runpy, sys; import tensorflow as tf; "
                "os.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'; "
                "sys.argv = ['main.py', '--epochs', '5000']; "
                "runpy.run_path('main.py', run_name='__main__')"
            ),
        ],
        subprocess.PIPE,
    ),
}


@pytest.fixture(scope="session", autouse=True)
def background():
    """The BACKGROUND processes, started now; any left running are killed."""
    processes = {
        name: start_python(*argv, stderr=stderr)
        for name, (argv, stderr) in BACKGROUND.items()
    }
    closer = threading.Thread(
        target=close_after_header, args=(processes["after_import"],), daemon=True
    )
    closer.start()
    # Stop the long run as soon as it trains, so it does not hold a CPU core.
    head = []
    ctrl_c = threading.Thread(
        target=press_ctrl_c_once_training, args=(processes["long"], head), daemon=True
    )
    ctrl_c.start()
    yield processes | {"long_ctrl_c": (ctrl_c, head)}
    for process in processes.values():
        if process.poll() is None:  # the test that reads it did not run
            process.kill()
        for pipe in (process.stdout, process.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()
        process.wait()


def close_after_header(process):
    """Read up to the table's header, then close the pipe, as `head -6` would."""
    for line in process.stdout:
        if line.lstrip().startswith("epoch"):
            break
    process.stdout.close()


def press_ctrl_c_once_training(process, head):
    """Read the header and table rows into `head`; once a row after row 0 is out,
    so training is under way, send SIGINT (Ctrl-C)."""
    for line in process.stdout:
        head.append(line)
        if re.match(r" +[0-9.]+ ", line) and not re.match(r" +0 ", line):
            break
    process.send_signal(signal.SIGINT)


@pytest.fixture(scope="session")
def interrupted_run(background):
    """(exit status, output) of the long run, stopped with Ctrl-C once a row
    after row 0 was out."""
    ctrl_c, head = background["long_ctrl_c"]
    ctrl_c.join(timeout=120)
    status, out, _ = finished(background["long"])
    return status, "".join(head) + out


@pytest.fixture(scope="session")
def after_import_run(background):
    """(exit status, stderr) of the log-level probe that then runs main.py."""
    process = background["after_import"]
    return process.wait(timeout=120), process.stderr.read()
