"""The command line: each option changes what it should, bad input is refused,
and every message names the real cause."""

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
    """{label: (W, b, loss)} from the summary rows."""
    return {row[0]: tuple(map(float, row[1:])) for row in SUMMARY_ROW.findall(out)}


def table(out):
    """[(epoch, W, b, loss)] from the progress table."""
    return [(int(r[0]), *map(float, r[1:])) for r in TABLE_ROW.findall(out)]


def default_limits():
    """(stability limit, fastest rate) of the default data."""
    x, _ = main.make_data(main.NUM_EXAMPLES, 3.0, 2.0, main.NOISE_STD, main.SEED)
    return main.learning_rate_limits(x)


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
    for flag in ("--eager", "--jit-compile", "--keras", "--plot PATH"):
        assert flag in out


def test_noise_zero_learns_the_true_line_exactly(capsys):
    """--noise 0: no noise to fit, so training finds W=3, b=2 within 1e-4."""
    status, out, _ = run_main(capsys, "--noise", "0")
    learned = summary(out)["learned"]
    assert status == 0
    assert abs(learned[0] - 3.0) <= 1e-4 and abs(learned[1] - 2.0) <= 1e-4
    assert learned[2] <= 1e-5
    assert "With no noise, the least-squares line is the true line." in out


def test_epochs_one_runs_one_epoch_and_advises_the_fastest_rate(capsys):
    """--epochs 1: table rows 0 and 1; not converged; the data's fastest rate."""
    status, out, _ = run_main(capsys, "--epochs", "1")
    assert status == 0
    assert [row[0] for row in table(out)] == [0, 1]
    fastest = default_limits()[1]
    assert "Try more --epochs" in out
    assert f"--learning-rate: {fastest:.5f} is the fastest." in out
    assert f"fastest {fastest:.5f}" in out  # the header says it too


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


@pytest.mark.parametrize(
    "flag, mode", [("--eager", "eagerly"), ("--jit-compile", "compiled by XLA")]
)
def test_eager_and_jit_compile_learn_the_same_w_and_b(capsys, flag, mode):
    """--eager and --jit-compile change how the step runs, not what it learns."""
    _, graph_out, _ = run_main(capsys, "--epochs", "30")
    status, out, _ = run_main(capsys, "--epochs", "30", flag)
    assert status == 0 and mode in out.splitlines()[1]
    for label in ("learned", "least-squares"):
        np.testing.assert_allclose(
            summary(out)[label], summary(graph_out)[label], atol=2e-5
        )


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--epochs", "0"], "--epochs"),
        (["--epochs", "2.5"], "--epochs"),
        (["--epochs", "ten"], "--epochs"),
        (["--epochs", "10000000000000000"], "--epochs"),
        (["--learning-rate", "0"], "--learning-rate"),
        (["--learning-rate", "-0.1"], "--learning-rate"),
        (["--learning-rate", "nan"], "--learning-rate"),
        (["--learning-rate", "inf"], "--learning-rate"),
        (["--learning-rate", "1e999"], "--learning-rate"),
        (["--num-examples", "1"], "--num-examples"),
        (["--num-examples", "1e6"], "--num-examples"),
        (["--num-examples", "1000000000000"], "--num-examples"),
        (["--noise", "-1"], "--noise"),
        (["--noise", "nan"], "--noise"),
        (["--noise", "1e20"], "--noise"),
        (["--noise", "1e39"], "--noise"),
        (["--seed", "-3"], "--seed"),
        (["--seed", "x"], "--seed"),
        (["--epochs"], "--epochs"),
        (["--eager", "--jit-compile"], "--jit-compile"),
        (["--plot", "figure.jpg"], "--plot"),
        (["--plot", "no/such/folder/figure.png"], "--plot"),
        (["--plot", "folder.png"], "--plot"),
        (["--plot", "x" * 300 + ".png"], "--plot"),
        (["--batch-size", "32"], "--batch-size"),
    ],
)
def test_bad_input_exits_2_with_a_one_line_reason(
    capsys, monkeypatch, tmp_path, argv, option
):
    """Bad input: status 2, usage, and one error line naming the option."""
    monkeypatch.chdir(tmp_path)  # so a broken check could not litter the repo
    (tmp_path / "folder.png").mkdir()
    status, out, err = run_main(capsys, *argv)
    error_lines = [line for line in err.splitlines() if "error:" in line]
    assert status == 2
    assert len(error_lines) == 1 and option in error_lines[0]
    assert err.startswith("usage:") and "Traceback" not in err
    assert out == ""


@pytest.mark.parametrize(
    "noise, what", [("1e20", "the squared errors overflow"), ("1e39", "the data")]
)
def test_noise_too_large_for_float32_says_what_overflowed(capsys, noise, what):
    """A --noise that float32 cannot hold is refused before training, by name."""
    status, out, err = run_main(capsys, "--noise", noise)
    assert status == 2 and out == ""
    assert f"with noise std {float(noise):g}, {what}" in err
    assert "float32" in err and "learning rate" not in err


def test_num_examples_beyond_memory_is_refused_with_the_estimate(capsys):
    """Too many examples for this machine: refused before allocating anything."""
    status, _, err = run_main(capsys, "--num-examples", "1000000000000")
    assert status == 2
    assert re.search(r"1,000,000,000,000 examples need about 1\.2e\+05 GB", err)


def test_running_out_of_memory_later_is_one_line(capsys, monkeypatch):
    """A MemoryError that the estimate missed: one line, status 2, no traceback."""

    def out_of_memory(*args):
        raise MemoryError

    monkeypatch.setattr(main, "make_data", out_of_memory)
    status, _, err = run_main(capsys, "--num-examples", "50000")
    assert status == 2
    assert err == (
        "main.py: error: argument --num-examples: out of memory with 50,000 "
        "examples; try fewer\n"
    )


@pytest.mark.skipif(not main.os.path.isdir("/proc"), reason="needs Linux's /proc")
def test_plot_in_a_folder_that_cannot_really_be_written_is_refused(capsys):
    """/proc passes os.access for root, yet no file can be created there."""
    status, out, err = run_main(capsys, "--plot", "/proc/figure.png")
    assert status == 2 and out == ""
    assert "argument --plot: cannot write '/proc/figure.png'" in err


def test_plot_check_leaves_no_file_and_keeps_an_existing_one(capsys, tmp_path):
    """The up-front write test removes what it created, and only that."""
    pytest.importorskip("matplotlib")  # without it, --plot stops before training
    new, existing = tmp_path / "new.png", tmp_path / "old.PNG"
    existing.write_bytes(b"keep me")
    for path in (new, existing):
        status, _, _ = run_main(capsys, "--learning-rate", "5", "--plot", str(path))
        assert status == 1  # diverged, so no figure is saved
    assert not new.exists() and existing.read_bytes() == b"keep me"


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
    path = tmp_path / "run.PNG"
    status, out, _ = run_main(capsys, "--epochs", "5", "--plot", str(path))
    assert status == 0 and f"Saved the figure to {path}" in out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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


def test_too_large_learning_rate_exits_1_saying_it_diverged(capsys):
    """Divergence: status 1, the epoch, the limit and the fastest rate."""
    status, out, err = run_main(capsys, "--learning-rate", "5")
    limit, fastest = default_limits()
    assert status == 1
    assert re.search(r"Training diverged at epoch \d+: the loss grew", err)
    assert f"not below the stability limit {limit:.5f}" in err
    assert f"{fastest:.5f} is the fastest" in err
    assert summary(out) == {}
    assert not re.search(r"nan|inf", out, re.IGNORECASE)


def test_learning_rate_so_large_the_loss_overflows_is_reported_plainly(capsys):
    """A float32 overflow after one step: stderr says the loss overflowed."""
    status, out, err = run_main(capsys, "--learning-rate", "1e30")
    assert status == 1
    assert "Training diverged at epoch 1: the loss overflowed float32" in err
    assert not re.search(r"nan|inf", out, re.IGNORECASE)


def test_above_the_limit_but_not_yet_diverged_says_so_not_more_epochs(capsys):
    """Just above the limit, 20 epochs do not blow up; more would not help."""
    limit, fastest = default_limits()
    rate = f"{limit * 1.01:.5f}"
    status, out, err = run_main(capsys, "--learning-rate", rate, "--epochs", "20")
    assert status == 1
    assert "has not diverged within 20 epochs, but cannot converge" in err
    assert f"not below the stability limit {limit:.5f}" in err
    assert f"{fastest:.5f} is the fastest" in err
    assert "Try more --epochs" not in out + err and "Converged" not in out


@pytest.mark.parametrize("rate", ["1e-12", "1e-9"])
def test_learning_rate_too_small_for_float32_to_move_w(capsys, rate):
    """Updates below half a float32 gap round away: say so, not 'more epochs'."""
    status, out, _ = run_main(capsys, "--learning-rate", rate, "--epochs", "3")
    assert status == 0
    assert "W no longer changes" in out and "rounds away" in out
    assert "Try more --epochs" not in out


def test_large_noise_converges_to_float32_resolution(capsys):
    """--noise 1e6: W is about 1e4, where float32 cannot get within 1e-4."""
    status, out, _ = run_main(capsys, "--noise", "1e6")
    learned, fitted = summary(out)["learned"], summary(out)["least-squares"]
    assert status == 0 and "Converged" in out
    assert abs(fitted[0]) > 1000  # so a fixed 1e-4 would be below float32's gaps
    assert abs(learned[0] - fitted[0]) <= 32 * main.FLOAT32_EPS * abs(fitted[0])


def test_ctrl_c_stops_with_one_line_and_status_130(interrupted_run):
    """Ctrl-C during training: the epoch reached, W and b, exit status 130."""
    status, _, err = interrupted_run
    assert status == 130
    messages = [line for line in err.splitlines() if "main.py" in line]
    assert "Traceback" not in err and len(messages) == 1
    assert re.fullmatch(
        r"main.py: stopped by Ctrl-C at epoch \d+: W=-?\d+\.\d{5}, b=-?\d+\.\d{5}\.",
        messages[0],
    )


def test_ctrl_c_while_tensorflow_loads_prints_no_traceback(python_started):
    """Ctrl-C before training starts ends the program quietly, as SIGINT does."""
    process = python_started("main.py")
    main.time.sleep(0.5)  # Python has started; TensorFlow takes seconds to load
    process.send_signal(main.signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode in (-main.signal.SIGINT, 130)
    assert "Traceback" not in err


@pytest.mark.skipif(not hasattr(main.signal, "SIGPIPE"), reason="no SIGPIPE here")
def test_output_piped_into_a_closed_pipe_stops_without_a_traceback(after_import_run):
    """As with `python main.py | head -1`: the pipe closes, and main.py stops as
    other programs do (killed by SIGPIPE, shell status 141), with no traceback."""
    status, err = after_import_run
    assert status == -main.signal.SIGPIPE, err
    assert "Traceback" not in err
