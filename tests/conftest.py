"""Shared pieces for the tests: import main.py once, and train it once."""

import os
import subprocess
import sys

import pytest

# main.py lives one folder up; make it importable however pytest is started.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import main  # after the line above; this imports TensorFlow once per session


def train_fresh_model(
    x, y, learning_rate, epochs, eager=False, start=None, report=None
):
    """Train a new model the way main() does; return its TrainingResult."""
    initial_w, initial_b = start or (main.INITIAL_W, main.INITIAL_B)
    model = main.LinearModel(initial_w, initial_b)
    return main.train(
        model,
        main.tf.constant(x),
        main.tf.constant(y),
        learning_rate,
        epochs,
        main.make_step(eager),
        main.DIVERGENCE_FACTOR,
        report,
    )


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
    """One training run with every default setting (tf.function step)."""
    x, y = default_data
    return train_fresh_model(x, y, main.LEARNING_RATE, main.EPOCHS)


@pytest.fixture(scope="session", autouse=True)
def main_py_process():
    """`python main.py` as a learner runs it, started when the tests start.

    TensorFlow takes seconds to import; running the command in the background
    lets that overlap with the other tests instead of adding to the total.
    """
    process = subprocess.Popen(
        [sys.executable, "main.py"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield process
    if process.poll() is None:  # the test that reads it did not run
        process.kill()
        process.communicate()
