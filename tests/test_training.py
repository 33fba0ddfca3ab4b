"""The tutorial's promises: it converges, repeats itself, and says so."""

import re

import numpy as np
import pytest

import main

NUMBER = r"(-?\d+\.\d{5}|-?\d\.\d+e[+-]\d+)"  # as main.number() writes them
SUMMARY_ROW = re.compile(
    rf"^(learned|least-squares|true|keras fit\(\)) +W={NUMBER}  b={NUMBER}"
    rf"  loss={NUMBER}$",
    re.MULTILINE,
)


def loss_float64(x, y, w, b):
    """mean((y - (x*w + b))**2) in float64, as main.py's summary computes it."""
    return float(
        np.mean(np.square(y.astype(np.float64) - (x.astype(np.float64) * w + b)))
    )


def fitted(x, y):
    """Least squares of the data, as main.py computes it."""
    return main.learning_rate_facts(x, y, len(x), 0.1).fitted


def final_w_b(run):
    history, _ = run
    return history[-1].w, history[-1].b


def test_defaults_converge_to_least_squares_and_near_true_line(
    default_data, default_run
):
    """Default settings land within 1e-4 of least squares and 0.1 of 3 and 2."""
    w, b = final_w_b(default_run)
    fitted_w, fitted_b = fitted(*default_data)
    assert not default_run[1]
    assert abs(w - fitted_w) <= 1e-4 and abs(b - fitted_b) <= 1e-4
    assert abs(w - main.TRUE_W) < 0.1 and abs(b - main.TRUE_B) < 0.1


def test_loss_falls_from_first_epoch_to_last(default_run):
    """The loss at the end is far below the loss at the start."""
    losses = [state.loss for state in default_run[0]]
    assert losses[-1] < 0.2 * losses[0]


def test_history_has_one_state_per_epoch_plus_the_start(default_run):
    """Row k holds W and b after k updates; rows run from 0 to EPOCHS."""
    assert [state.epoch for state in default_run[0]] == list(range(main.EPOCHS + 1))


def test_same_seed_gives_same_w_and_b(train_on):
    """Two runs from the same seed learn bit-for-bit the same W and b."""
    runs = [
        final_w_b(train_on(*main.make_data(500, 3.0, 2.0, 1.0, seed=7), 0.1, 20))
        for _ in range(2)
    ]
    assert runs[0] == runs[1]


@pytest.mark.parametrize("options", [{"eager": True}, {"jit_compile": True}])
def test_eager_xla_and_tf_function_learn_the_same(
    default_data, default_run, train_on, options
):
    """Eager mode, the graph and the XLA-compiled graph reach the same W and b."""
    other = train_on(*default_data, main.LEARNING_RATE, main.EPOCHS, **options)
    np.testing.assert_allclose(final_w_b(other), final_w_b(default_run), atol=1e-6)


def test_python_main_py_prints_the_three_summary_rows(capsys):
    """`python main.py` exits 0 and ends with learned, least-squares, true."""
    status = main.main([])
    output = capsys.readouterr().out
    assert status == 0, output
    rows = SUMMARY_ROW.findall(output)
    assert [row[0] for row in rows] == ["learned", "least-squares", "true"]
    learned, fitted, true = [tuple(map(float, row[1:])) for row in rows]
    assert abs(learned[0] - fitted[0]) <= 1e-4 and abs(learned[1] - fitted[1]) <= 1e-4
    assert true[:2] == (3.0, 2.0)
    assert "Traceback" not in output and "Converged" in output


def test_tensorflow_start_up_lines_all_come_before_the_output(interrupted_run):
    """main.py runs TensorFlow's first operation before printing its first line,
    so no start-up log line lands inside the table."""
    _, output = interrupted_run
    after_header = output[output.index("Data: ") :]
    assert not re.search(
        r"^(WARNING: All log|[IWE]\d{4} |\d{4}-\d\d-\d\d )", after_header, re.MULTILINE
    )


def test_each_row_pairs_w_and_b_with_their_own_loss(default_data, default_run):
    """No stale losses: every recorded loss is the loss at that row's W and b."""
    x, y = default_data
    for state in default_run[0][::10]:
        expected = loss_float64(x, y, state.w, state.b)
        assert state.loss == pytest.approx(expected, rel=1e-5)


def test_loss_from_five_means_is_the_mean_squared_error_of_training():
    """The table's and summary's loss, from the data's five means (section 7), is
    mean_squared_error (section 3) over the data, to float32 rounding."""
    x, y = main.make_data(1000, 3.0, 2.0, 1.0, seed=3)
    means = main.learning_rate_facts(x, y, len(x), 0.1).means
    for w, b in [(5.0, 0.0), (3.0, 2.0), (-1.0, 1.0)]:
        trained = float(main.mean_squared_error(y, x * np.float32(w) + np.float32(b)))
        assert main.loss_at(means, w, b) == pytest.approx(trained, rel=1e-5)
        assert main.loss_at(means, w, b) == pytest.approx(loss_float64(x, y, w, b))
