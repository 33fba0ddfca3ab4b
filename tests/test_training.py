"""The tutorial's promises: it converges, repeats itself, and says so."""

import re

import numpy as np
import pytest

import main

SUMMARY_ROW = re.compile(
    r"^(learned|least-squares|true) +W=(-?\d+\.\d{5})  b=(-?\d+\.\d{5})"
    r"  loss=(\d+\.\d{5})$",
    re.MULTILINE,
)


def final_w_b(result):
    return result.history[-1].w, result.history[-1].b


def test_defaults_converge_to_least_squares_and_near_true_line(
    default_data, default_run
):
    """Default settings land within 1e-4 of least squares and 0.1 of 3 and 2."""
    x, y = default_data
    w, b = final_w_b(default_run)
    fitted_w, fitted_b = main.least_squares(x, y)
    assert not default_run.diverged
    assert abs(w - fitted_w) <= 1e-4 and abs(b - fitted_b) <= 1e-4
    assert abs(w - main.TRUE_W) < 0.1 and abs(b - main.TRUE_B) < 0.1


def test_loss_falls_from_first_epoch_to_last(default_run):
    """The loss at the end is far below the loss at the start."""
    losses = [state.loss for state in default_run.history]
    assert losses[-1] < 0.2 * losses[0]


def test_loss_never_rises_at_a_stable_learning_rate(default_run):
    """As has_diverged's comment says: below the limit, no epoch raises the loss."""
    losses = np.array([state.loss for state in default_run.history])
    # float32 rounding can wobble the last digits once converged.
    assert np.all(np.diff(losses) <= 1e-6 * losses[:-1])


def test_history_has_one_state_per_epoch_plus_the_start(default_run):
    """Row k holds W and b after k updates; rows run from 0 to EPOCHS."""
    epochs = [state.epoch for state in default_run.history]
    assert epochs == list(range(main.EPOCHS + 1))


def test_same_seed_gives_same_w_and_b(train_on):
    """Two runs from the same seed learn bit-for-bit the same W and b."""
    runs = []
    for _ in range(2):
        x, y = main.make_data(500, main.TRUE_W, main.TRUE_B, 1.0, seed=7)
        runs.append(final_w_b(train_on(x, y, main.LEARNING_RATE, 20)))
    assert runs[0] == runs[1]


def test_eager_and_tf_function_learn_the_same(default_data, default_run, train_on):
    """The graph runs the same arithmetic as eager mode: same W and b."""
    x, y = default_data
    eager = train_on(x, y, main.LEARNING_RATE, main.EPOCHS, eager=True)
    np.testing.assert_allclose(final_w_b(eager), final_w_b(default_run), atol=1e-6)


def test_python_main_py_prints_the_three_summary_rows(main_py_process):
    """`python main.py` exits 0 and ends with learned, least-squares, true."""
    stdout, stderr = main_py_process.communicate(timeout=120)
    assert main_py_process.returncode == 0, stderr
    rows = SUMMARY_ROW.findall(stdout)
    assert [row[0] for row in rows] == ["learned", "least-squares", "true"]
    learned, fitted, true = [tuple(map(float, row[1:])) for row in rows]
    assert abs(learned[0] - fitted[0]) <= 1e-4 and abs(learned[1] - fitted[1]) <= 1e-4
    assert true[:2] == (3.0, 2.0)
    assert "Traceback" not in stderr
    assert "Converged" in stdout


def test_each_row_pairs_w_and_b_with_their_own_loss(default_data, default_run):
    """No stale losses: every recorded loss is the loss at that row's W and b."""
    x, y = default_data
    for state in default_run.history[::10]:
        assert state.loss == pytest.approx(
            main.loss_float64(x, y, state.w, state.b), rel=1e-5
        )


def test_summary_loss_is_the_same_mean_squared_error_as_training():
    """loss_float64 (the summary) and mean_squared_error (training) agree."""
    x, y = main.make_data(1000, 3.0, 2.0, 1.0, seed=3)
    for w, b in [(5.0, 0.0), (3.0, 2.0), (-1.0, 1.0)]:
        trained = float(main.mean_squared_error(y, x * np.float32(w) + np.float32(b)))
        assert main.loss_float64(x, y, w, b) == pytest.approx(trained, rel=1e-5)


def test_report_sees_every_state_but_a_diverged_one(default_data, train_on):
    """train() reports each state as it goes, never the runaway one."""
    reported = []
    result = train_on(*default_data, 5.0, epochs=50, report=reported.append)
    assert result.diverged
    assert reported == result.history[:-1]
    assert all(np.isfinite(state.loss) for state in reported)
