"""The command line: each option changes what it should, bad input is refused,
and every message names the real cause."""

import re
import signal

import numpy as np
import pytest
from test_training import SUMMARY_ROW

import main

TABLE_ROW = re.compile(
    r"^ +(\d+) +(-?\d+\.\d{5}) +(-?\d+\.\d{5}) +(\d+\.\d{5})(?: +\d+\.\d{5})?$",
    re.MULTILINE,
)


def run_main(capsys, *argv):
    """Run main() in this process; return (exit status, stdout, stderr)."""
    status = main.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def summary(out):
    """{label: (W, b, loss)} from the summary rows."""
    return {row[0]: tuple(map(float, row[1:])) for row in SUMMARY_ROW.findall(out)}


def table(out):
    """[(epoch, W, b, loss)] from the progress table."""
    return [(int(r[0]), *map(float, r[1:])) for r in TABLE_ROW.findall(out)]


def default_rates():
    """(stability limit, balanced rate) of the default data."""
    x, y = main.make_data(main.NUM_EXAMPLES, 3.0, 2.0, main.NOISE_STD, main.SEED)
    facts = main.learning_rate_facts(x, y, len(x), main.LEARNING_RATE)
    return facts.stable, facts.balanced


def default_data_arrays():
    return main.make_data(main.NUM_EXAMPLES, 3.0, 2.0, main.NOISE_STD, main.SEED)


def default_fitted():
    x, y = default_data_arrays()
    return main.learning_rate_facts(x, y, len(x), 0.1).fitted


def rounded_down(limit):
    """The limit as main.py prints it: 5 decimals, rounded down."""
    return f"{np.floor(limit * 1e5) / 1e5:.5f}"


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
        ("--batch-size", "all examples"),
    ]:
        entry = re.search(rf"^  {option} .*?(?=^  -|\Z)", out, re.MULTILINE | re.DOTALL)
        assert entry and f"(default: {default})" in " ".join(entry[0].split())
    for flag in ("--eager", "--jit-compile", "--keras", "--plot PATH"):
        assert flag in out
    assert "an integer from 1 to 1e15" in " ".join(out.split())


def test_noise_zero_learns_the_true_line_exactly(capsys):
    """--noise 0: no noise to fit, so training finds W=3, b=2 within 1e-4."""
    status, out, _ = run_main(capsys, "--noise", "0")
    learned = summary(out)["learned"]
    assert status == 0
    assert abs(learned[0] - 3.0) <= 1e-4 and abs(learned[1] - 2.0) <= 1e-4
    assert learned[2] <= 1e-5
    assert "Least squares is the true line here: no noise" in out


def test_epochs_one_runs_one_epoch_and_says_how_many_would_converge(capsys):
    """--epochs 1: table rows 0 and 1; not converged; the epochs that would."""
    status, out, _ = run_main(capsys, "--epochs", "1")
    assert status == 0
    assert [row[0] for row in table(out)] == [0, 1]
    advised = re.search(r"so --epochs (\d+) would reach the tolerance", out)[1]
    _, out, _ = run_main(capsys, "--epochs", advised)
    assert "Converged" in out
    _, out, _ = run_main(capsys, "--epochs", str(int(advised) - 1))
    assert "Not converged" in out  # the advice is the fewest, here
    balanced = default_rates()[1]
    assert f"balanced {balanced:.5f}" in out.splitlines()[3]  # the header


@pytest.mark.parametrize("epochs", ["5", "25", "133"])
def test_table_has_evenly_spaced_rows_from_0_to_the_last_epoch(capsys, epochs):
    """Every ceil(epochs / TABLE_ROWS)-th epoch, and the last."""
    _, out, _ = run_main(capsys, "--epochs", epochs)
    every = -(-int(epochs) // main.TABLE_ROWS)
    expected = sorted({*range(0, int(epochs) + 1, every), int(epochs)})
    assert [row[0] for row in table(out)] == expected


def test_a_long_run_prints_a_row_at_least_every_progress_seconds(capsys, monkeypatch):
    """Between the evenly spaced rows, a row whenever PROGRESS_SECONDS passed."""
    monkeypatch.setattr(main, "PROGRESS_SECONDS", 0.0)
    _, out, _ = run_main(capsys, "--epochs", "30")
    assert [row[0] for row in table(out)] == list(range(31))


def test_progress_keeps_bounded_memory_whatever_the_epochs():
    """Progress keeps every epoch's row only up to PLOT_POINTS; then thins them."""
    import io
    import tracemalloc

    x, y = main.make_data(100, 3.0, 2.0, 1.0, seed=0)
    facts = main.learning_rate_facts(x, y, len(x), 0.1)

    class Model:  # what Progress reads of a model: its w and b
        w, b = 1.0, 2.0

    for epochs in (2_000, 10_000):
        model = Model()
        main.sys.stdout, real = io.StringIO(), main.sys.stdout
        tracemalloc.start()
        try:
            progress = main.Progress(epochs, facts)
            for epoch in range(epochs + 1):
                progress.epoch_done(epoch, model, None)
            grown = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            main.sys.stdout = real
        assert len(progress.kept) <= main.PLOT_POINTS + 2
        assert progress.kept[-1].epoch == epochs
        assert grown < 2_000_000


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
    assert status == 0 and mode in out.splitlines()[2]
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
        (["--epochs", "1e16"], "--epochs"),
        (["--learning-rate", "0"], "--learning-rate"),
        (["--learning-rate", "-0.1"], "--learning-rate"),
        (["--learning-rate", "nan"], "--learning-rate"),
        (["--learning-rate", "inf"], "--learning-rate"),
        (["--learning-rate", "1e999"], "--learning-rate"),
        (["--learning-rate", "1e16"], "--learning-rate"),
        (["--num-examples", "1"], "--num-examples"),
        (["--num-examples", "1.5e0"], "--num-examples"),
        (["--noise", "-1"], "--noise"),
        (["--noise", "nan"], "--noise"),
        (["--noise", "2e9"], "--noise"),
        (["--noise", "1e20"], "--noise"),
        (["--noise", "1e39"], "--noise"),
        (["--seed", "-3"], "--seed"),
        (["--seed", "x"], "--seed"),
        (["--epochs"], "--epochs"),
        (["--eager", "--jit-compile"], "--jit-compile"),
        (["--plot", "figure.jpg"], "--plot"),
        (["--epochs", ""], "--epochs"),
        (["--batch-size", "0"], "--batch-size"),
        (["--batch-size", "-8"], "--batch-size"),
        (["--batch-size", "7.5"], "--batch-size"),
        (["--batch-size", "all"], "--batch-size"),
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


def test_integer_options_take_scientific_notation(capsys):
    """--epochs 1e1 is 10 epochs, as the limits in --help are written."""
    status, out, _ = run_main(capsys, "--epochs", "1e1", "--num-examples", "2e2")
    assert status == 0 and "Data: 200 examples" in out and "Training: 10 " in out


def test_the_largest_noise_accepted_keeps_every_loss_finite_in_float32(capsys):
    """--noise stops at 1e9, where the loss (about 1e18) and any sum of such losses
    float32 adds up stay far below its largest number (3.4e38): no overflow to
    blame on the learning rate. Above 1e9 it is bad input (tested above)."""
    argv = ["--noise", "1e9", "--epochs", "3", "--batch-size", "100"]
    status, out, err = run_main(capsys, *argv)
    assert status == 0 and "Not converged" in out
    assert not re.search(r"nan|inf|overflow", out + err, re.IGNORECASE)


def test_data_that_does_not_fit_in_memory_is_one_line(capsys):
    """A MemoryError or ResourceExhaustedError: one line, status 2, no traceback.
    (A trillion float32 numbers would take 4 TB: NumPy refuses at once.)"""
    status, _, err = run_main(capsys, "--num-examples", "1e12")
    assert status == 2
    assert err == (
        "main.py: error: argument --num-examples: 1,000,000,000,000 examples do not"
        " fit in memory; try fewer\n"
    )


def test_plot_without_matplotlib_exits_2_saying_how_to_install(
    capsys, monkeypatch, tmp_path
):
    """--plot with matplotlib missing: status 2 and the pip command to fix it."""
    monkeypatch.setitem(main.sys.modules, "matplotlib", None)  # import fails
    status, _, err = run_main(capsys, "--plot", str(tmp_path / "figure.png"))
    assert status == 2
    assert "--plot" in err and "pip install matplotlib" in err


@pytest.fixture
def drawn(monkeypatch):
    """{"walk": the path of W and b} that main.draw() is given, once it is."""
    pytest.importorskip("matplotlib")
    given = {}
    real_draw = main.draw
    monkeypatch.setattr(
        main, "draw", lambda *args: given.update(walk=args[4]) or real_draw(*args)
    )
    return given


@pytest.mark.parametrize("batch_size", [None, "100"])
def test_plot_writes_a_png_with_the_path_of_w_and_b(
    capsys, drawn, tmp_path, batch_size
):
    """--plot PATH saves a real PNG (its 8-byte signature), its path panel from
    the run's own first updates: one an epoch, or one a batch."""
    path = tmp_path / "run.PNG"
    argv = ["--epochs", "5", "--plot", str(path)]
    argv += ["--batch-size", batch_size] if batch_size else []
    status, out, _ = run_main(capsys, *argv)
    assert status == 0 and f"Saved the figure to {path}" in out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    steps = 5 * (10 if batch_size else 1)
    assert len(drawn["walk"]) == steps + 1 and tuple(drawn["walk"][0]) == (5.0, 0.0)
    rows = table(out)
    assert tuple(drawn["walk"][-1]) == pytest.approx(rows[-1][1:3], abs=1e-5)


@pytest.mark.parametrize("where", ["no/such/folder/figure.png", "x" * 300 + ".png"])
def test_plot_that_fails_to_save_exits_2_after_training_with_one_line(
    capsys, monkeypatch, tmp_path, where
):
    """A figure that cannot be written (no such folder, a name too long): the run
    and its verdict as usual, then one line saying why, and status 2."""
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    status, out, err = run_main(capsys, "--epochs", "2", "--plot", where)
    assert status == 2 and "Not converged" in out and "Saved" not in out
    assert err.count("\n") == 1
    assert err.startswith(f"main.py: error: argument --plot: cannot write {where!r}: ")


def test_a_diverged_run_saves_its_figure_too(capsys, drawn, tmp_path):
    """--plot with a run that diverges: the path out of the bowl is saved."""
    path = tmp_path / "diverged.png"
    status, out, _ = run_main(capsys, "--learning-rate", "1.5", "--plot", str(path))
    assert status == 1 and f"Saved the figure to {path}" in out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(drawn["walk"]) == 3  # the start, and both steps before it blew up


def test_main_runs_with_an_output_that_cannot_be_reconfigured(monkeypatch):
    """As in a notebook, whose output stream is not a plain text file."""
    import io

    out = io.StringIO()
    monkeypatch.setattr(main.sys, "stdout", out)
    assert main.main(["--epochs", "2"]) == 0
    assert "learned" in out.getvalue()


def test_unencodable_plot_name_is_printed_escaped(capsys, monkeypatch, tmp_path):
    """A file name with bytes that are not UTF-8 (a surrogate escape in Python),
    printed to a strict UTF-8 output, comes out escaped instead of failing."""
    pytest.importorskip("matplotlib")
    import io

    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    monkeypatch.setattr(main.sys, "stdout", out)
    name = str(tmp_path / "fig\udcff.png")
    assert main.main(["--epochs", "2", "--plot", name]) == 0
    out.flush()
    assert b"fig\\udcff.png" in out.buffer.getvalue()


def test_too_large_learning_rate_exits_1_saying_it_diverged(capsys):
    """Divergence: status 1, the epoch, the growth, the limit, the balanced rate."""
    status, out, err = run_main(capsys, "--learning-rate", "5")
    limit, balanced = default_rates()
    assert status == 1
    assert re.search(r"Training diverged at epoch \d+: the loss grew", err)
    assert f"not below the stability limit {rounded_down(limit)}:" in err
    assert f"(balanced {balanced:.5f})" in err
    assert summary(out) == {}
    assert not re.search(r"nan|inf", out, re.IGNORECASE)


def test_diverged_with_keras_says_fit_was_not_run(capsys):
    status, _, err = run_main(capsys, "--learning-rate", "1.5", "--keras")
    assert status == 1
    assert err.endswith("keras fit() was not run: it would take the same steps.\n")


def test_learning_rate_so_large_that_w_and_b_overflow_is_reported_plainly(capsys):
    """Ten steps an epoch at a huge rate overflow float32 within epoch 1: stderr
    says so, not that a loss 'grew to inf'."""
    argv = ["--learning-rate", "1e15", "--batch-size", "100"]
    status, out, err = run_main(capsys, *argv)
    assert status == 1
    assert "Training diverged at epoch 1: W and b overflowed float32." in err
    assert not re.search(r"nan|inf", out, re.IGNORECASE)


@pytest.mark.parametrize("epochs, within", [("20", "20 epochs"), ("1", "1 epoch")])
def test_above_the_limit_but_not_yet_diverged_says_so_not_more_epochs(
    capsys, epochs, within
):
    """Just above the limit, a few epochs do not blow up; more would not help."""
    limit, balanced = default_rates()
    rate = f"{limit * 1.01:.5f}"
    status, out, err = run_main(capsys, "--learning-rate", rate, "--epochs", epochs)
    text = " ".join(err.split())
    assert status == 1
    assert f"cannot converge, though in {within} its loss has not grown" in text
    assert f"not below the stability limit {rounded_down(limit)}:" in text
    assert f"(balanced {balanced:.5f})" in text
    assert "More epochs" not in out + err and "Converged" not in out


@pytest.mark.parametrize("rate", ["1.5", "1.2", "0.98", "0.9699"])
def test_above_the_limit_the_growth_printed_is_what_each_epoch_does(capsys, rate):
    """The factor printed is |1 - rate*lam_max|, and the distance from least
    squares, left to run, grows by it each epoch (float64, by hand)."""
    status, _, err = run_main(capsys, "--learning-rate", rate, "--epochs", "1")
    text = " ".join(err.split())
    printed = float(
        re.search(r"the distance from least squares by (\d+\.\d+)\.", text)[1]
    )
    x, y = (a.astype(np.float64) for a in default_data_arrays())
    fitted = np.array(default_fitted())
    theta, growth = np.array(main.INITIAL), []
    for _ in range(200):
        error = y - (x * theta[0] + theta[1])
        gradient = -2 * np.array([np.mean(x * error), np.mean(error)])
        before = np.linalg.norm(theta - fitted)
        theta = theta - float(rate) * gradient
        growth.append(np.linalg.norm(theta - fitted) / before)
    assert status == 1
    assert growth[-1] == pytest.approx(printed, rel=1e-5)


def test_the_printed_limit_is_a_rate_that_is_below_the_limit(capsys):
    """Typed back, the header's "stable below" rate is not refused: the limit is
    printed rounded down."""
    _, out, _ = run_main(capsys, "--epochs", "1")
    printed = re.search(r"stable below (\d\.\d{5})", out)[1]
    assert float(printed) < default_rates()[0]
    status, out, err = run_main(capsys, "--learning-rate", printed, "--epochs", "1")
    assert status == 0 and "stability limit" not in err


@pytest.mark.parametrize("rate", ["1e-12", "1e-9", "1e-40"])
def test_learning_rate_too_small_for_float32_to_move_w(capsys, train_on, rate):
    """Updates below half a float32 gap round away: W does not move at all (nor
    b at 1e-40, whose updates are below float32's smallest normal number, which
    TensorFlow flushes to 0), and the verdict says more epochs cannot help."""
    status, out, _ = run_main(capsys, "--learning-rate", rate, "--epochs", "3")
    text = " ".join(out.split())
    assert status == 0 and "rounds away. More --epochs cannot reach it." in text
    assert "would reach the tolerance" not in text
    history, _ = train_on(*default_data_arrays(), float(rate), 3)
    assert history[-1].w == main.INITIAL[0]
    assert (history[-1].b == main.INITIAL[1]) == (rate == "1e-40")


def test_large_noise_converges_to_float32_resolution(capsys):
    """--noise 1e6: W is about 1e4, where float32 cannot get within 1e-4; the
    tolerance printed is the one compared."""
    status, out, _ = run_main(capsys, "--noise", "1e6")
    learned, fitted = summary(out)["learned"], summary(out)["least-squares"]
    tolerance = float(re.search(r"least squares \(tolerance (\S+)\)", out)[1])
    assert summary(out)["learned"][2] > 1e11  # its loss shows in e-notation
    assert status == 0 and "Converged" in out
    assert abs(fitted[0]) > 1000  # so a fixed 1e-4 would be below float32's gaps
    largest = max(abs(fitted[0]), abs(fitted[1]))
    assert 1e-4 < tolerance <= 32 * np.finfo(np.float32).eps * largest
    assert np.hypot(learned[0] - fitted[0], learned[1] - fitted[1]) <= tolerance


def test_noise_too_small_for_float32_is_not_blamed(capsys):
    """--noise 1e-20 leaves the float32 data as with --noise 0: no noise to blame."""
    status, out, _ = run_main(capsys, "--noise", "1e-20")
    assert status == 0 and "does not cancel out" not in out
    assert "Least squares is the true line here" in out


def test_batch_size_header_and_a_batch_larger_than_the_data(capsys):
    """The header says how the data is split; a batch larger than the data is
    the whole data (full batch), with the same table as without --batch-size."""
    _, out, _ = run_main(capsys, "--batch-size", "300", "--epochs", "3")
    assert "3 epochs of 4 batches of 300 (the last smaller)" in out
    assert "stable below" in out and "for every batch" in out
    _, big, _ = run_main(capsys, "--batch-size", "5000", "--epochs", "3")
    _, full, _ = run_main(capsys, "--epochs", "3")
    assert "3 full-batch epochs" in big and table(big) == table(full)


def test_ctrl_c_stops_with_one_line_and_status_130(interrupted_run):
    """Ctrl-C during training: one line, exit status 130, no traceback."""
    status, output = interrupted_run
    assert status == 130, output
    messages = [line for line in output.splitlines() if "main.py" in line]
    assert "Traceback" not in output and messages == ["main.py: stopped by Ctrl-C."]


def test_ctrl_c_during_fit_keeps_the_hand_loops_summary(capsys, monkeypatch):
    """The hand loop's summary is out before fit() starts; Ctrl-C in fit() then
    ends the run with one line and status 130."""
    real_fit = main.fit_with_keras

    class CtrlC(main.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    def fit_pressing_ctrl_c(*args, callbacks):
        return real_fit(*args, callbacks=[*callbacks, CtrlC()])

    monkeypatch.setattr(main, "fit_with_keras", fit_pressing_ctrl_c)
    status, out, err = run_main(capsys, "--keras", "--epochs", "10")
    assert status == 130
    assert list(summary(out)) == ["learned", "least-squares", "true"]
    assert err == "main.py: stopped by Ctrl-C.\n"


@pytest.mark.skipif(not hasattr(signal, "SIGPIPE"), reason="no SIGPIPE here")
def test_output_into_a_pipe_that_closes_stops_the_run_with_141(after_import_run):
    """As `python main.py --epochs 5000 | head -6`: once the reader has gone, the
    next row (at epoch 500; on a longer run one comes at least every
    PROGRESS_SECONDS, tested above) fails to write; main.py stops with status 141,
    as the shell reports a program killed by SIGPIPE, and no traceback."""
    status, err = after_import_run
    assert status == 141, err
    assert "Traceback" not in err and "Exception ignored" not in err
