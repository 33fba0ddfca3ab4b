"""The command-line options: each changes what it should; bad input is refused."""

import re

import numpy as np
import pytest
from test_training import SUMMARY_ROW

import main

TABLE_ROW = re.compile(
    r"^ +(\d+) +(-?\d+\.\d{5}) +(-?\d+\.\d{5}) +(\d+\.\d{5})$", re.MULTILINE
)


def run_main(capsys, *argv):
    """Run main() in this process; return (exit status, stdout, stderr)."""
    try:
        status = main.main(list(argv))
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def summary(out):
    """{label: (W, b, loss)} from the three summary rows."""
    return {row[0]: tuple(map(float, row[1:])) for row in SUMMARY_ROW.findall(out)}


def table(out):
    """[(epoch, W, b, loss)] from the progress table."""
    return [(int(r[0]), *map(float, r[1:])) for r in TABLE_ROW.findall(out)]


def test_help_lists_every_option_with_its_default(capsys):
    """--help shows each option and the default taken from main.py's constants."""
    status, out, _ = run_main(capsys, "--help")
    assert status == 0
    for option, default in [
        ("--epochs", main.EPOCHS),
        ("--learning-rate", main.LEARNING_RATE),
        ("--num-examples", main.NUM_EXAMPLES),
        ("--noise", main.NOISE_STD),
        ("--seed", main.SEED),
    ]:
        entry = re.search(rf"^  {option} .*?(?=^  -|\Z)", out, re.MULTILINE | re.DOTALL)
        assert entry and f"(default: {default})" in " ".join(entry[0].split())
    assert "--eager" in out and "--plot PATH" in out


def test_noise_zero_learns_the_true_line_exactly(capsys):
    """--noise 0: no noise to fit, so training finds W=3, b=2 within 1e-4."""
    status, out, _ = run_main(capsys, "--noise", "0")
    learned = summary(out)["learned"]
    assert status == 0
    assert abs(learned[0] - 3.0) <= 1e-4 and abs(learned[1] - 2.0) <= 1e-4
    assert learned[2] <= 1e-5
    assert "With no noise, the least-squares line is the true line." in out


def test_epochs_one_runs_exactly_one_epoch(capsys):
    """--epochs 1: the table stops at epoch 1, and the script says not converged."""
    status, out, _ = run_main(capsys, "--epochs", "1")
    assert status == 0
    assert [row[0] for row in table(out)] == [0, 1]
    assert "Not converged" in out


@pytest.mark.parametrize("epochs", ["25", "333"])
def test_table_fits_a_screen_and_ends_at_the_last_epoch(capsys, epochs):
    """About TABLE_ROWS evenly spaced rows, from epoch 0 to the very last."""
    _, out, _ = run_main(capsys, "--epochs", epochs)
    rows = [row[0] for row in table(out)]
    assert rows[0] == 0 and rows[-1] == int(epochs)
    assert len(rows) <= main.TABLE_ROWS + 2


def test_learning_rate_sets_the_step_size(capsys):
    """Half the learning rate moves W half as far in the first epoch."""
    moves = []
    for rate in ("0.1", "0.05"):
        _, out, _ = run_main(capsys, "--epochs", "1", "--learning-rate", rate)
        (_, w0, _, _), (_, w1, _, _) = table(out)
        moves.append(w1 - w0)
    assert moves[0] < 0
    assert moves[1] == pytest.approx(moves[0] / 2, abs=2e-5)


def test_seed_repeats_the_data_and_another_seed_changes_it(capsys):
    """The least-squares line is a fingerprint of the data it was fitted to."""
    fits = {}
    for seed in ("7", "7", "8"):
        _, out, _ = run_main(capsys, "--epochs", "1", "--seed", seed)
        fits.setdefault(seed, []).append(summary(out)["least-squares"])
    assert fits["7"][0] == fits["7"][1]
    assert fits["8"][0] != fits["7"][0]


def test_num_examples_200000_lands_near_three_and_two(capsys):
    """More data: least squares, and so training, lands within 0.02 of 3 and 2."""
    status, out, _ = run_main(capsys, "--num-examples", "200000")
    learned = summary(out)["learned"]
    assert status == 0 and "Data: 200,000 examples" in out
    assert abs(learned[0] - 3.0) < 0.02 and abs(learned[1] - 2.0) < 0.02


def test_eager_learns_the_same_w_and_b_as_the_default(capsys):
    """--eager runs the step without tf.function and prints the same numbers."""
    _, graph_out, _ = run_main(capsys)
    status, eager_out, _ = run_main(capsys, "--eager")
    assert status == 0 and "step run eagerly" in eager_out
    assert summary(eager_out) == summary(graph_out)


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--epochs", "0"], "--epochs"),
        (["--epochs", "2.5"], "--epochs"),
        (["--epochs", "ten"], "--epochs"),
        (["--learning-rate", "0"], "--learning-rate"),
        (["--learning-rate", "-0.1"], "--learning-rate"),
        (["--learning-rate", "nan"], "--learning-rate"),
        (["--learning-rate", "inf"], "--learning-rate"),
        (["--learning-rate", "1e999"], "--learning-rate"),
        (["--num-examples", "1"], "--num-examples"),
        (["--num-examples", "1e6"], "--num-examples"),
        (["--noise", "-1"], "--noise"),
        (["--noise", "nan"], "--noise"),
        (["--seed", "-3"], "--seed"),
        (["--seed", "x"], "--seed"),
        (["--epochs"], "--epochs"),
        (["--plot", "figure.jpg"], "--plot"),
        (["--plot", "no/such/folder/figure.png"], "--plot"),
        (["--plot", "."], "--plot"),
        (["--batch-size", "32"], "--batch-size"),
    ],
)
def test_bad_input_exits_2_with_a_one_line_reason(
    capsys, monkeypatch, tmp_path, argv, option
):
    """Bad input: status 2, usage, and one error line naming the option."""
    monkeypatch.chdir(tmp_path)  # so a broken check could not litter the repo
    status, out, err = run_main(capsys, *argv)
    error_lines = [line for line in err.splitlines() if "error:" in line]
    assert status == 2
    assert len(error_lines) == 1 and option in error_lines[0]
    assert err.startswith("usage:") and "Traceback" not in err
    assert out == ""


def test_plot_without_matplotlib_exits_2_saying_how_to_install(
    capsys, monkeypatch, tmp_path
):
    """--plot with matplotlib missing: status 2 and the pip command to fix it."""
    monkeypatch.setitem(main.sys.modules, "matplotlib", None)  # import fails
    status, _, err = run_main(capsys, "--plot", str(tmp_path / "figure.png"))
    assert status == 2
    assert "--plot" in err and "pip install matplotlib" in err


def test_plot_writes_a_png(capsys, tmp_path):
    """--plot PATH saves a real PNG file (checked by its 8-byte signature)."""
    pytest.importorskip("matplotlib")
    path = tmp_path / "run.png"
    status, out, _ = run_main(capsys, "--epochs", "5", "--plot", str(path))
    assert status == 0 and f"Saved the figure to {path}" in out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_too_large_learning_rate_exits_1_saying_it_diverged(capsys, default_data):
    """Divergence: status 1, the epoch, the stable limit; no nan or inf printed."""
    status, out, err = run_main(capsys, "--learning-rate", "5")
    limit = main.stability_limit(default_data[0])
    assert status == 1
    assert re.search(r"Training diverged at epoch \d+", err)
    assert f"stable only below {limit:.5f}" in err
    assert summary(out) == {}
    assert not re.search(r"nan|inf", out, re.IGNORECASE)


@pytest.mark.parametrize(
    "loss, diverged",
    [(5.0, False), (10.0, False), (10.5, True), (np.inf, True), (np.nan, True)],
)
def test_has_diverged_flags_non_finite_or_runaway_loss(loss, diverged):
    """With a start loss of 1 and factor 10: over 10, inf and nan are divergence."""
    assert main.has_diverged(loss, 1.0, 10.0) is diverged


def test_plot_that_fails_to_save_exits_2_without_a_traceback(capsys, monkeypatch):
    """An OSError while saving (say, a full disk) is reported like bad input."""
    pytest.importorskip("matplotlib")

    def fail_to_save(path, *args):
        raise OSError(28, "No space left on device", path)

    monkeypatch.setattr(main, "save_plot", fail_to_save)
    status, _, err = run_main(capsys, "--epochs", "2", "--plot", "figure.png")
    assert status == 2
    assert err.strip() == (
        "main.py: error: argument --plot: "
        "[Errno 28] No space left on device: 'figure.png'"
    )


def test_learning_rate_so_large_the_loss_overflows_is_reported_plainly(capsys):
    """A float32 overflow after one step: stderr says the loss became inf."""
    status, out, err = run_main(capsys, "--learning-rate", "1e30")
    assert status == 1
    assert "Training diverged at epoch 1: the loss became inf" in err
    assert not re.search(r"nan|inf", out, re.IGNORECASE)
