"""Every verdict is tested against what it claims: a cycle against more epochs,
"--epochs N would reach the tolerance" against N epochs, float32's floor against
a long run, the growth against the steps, and the cycle's point and its limit
against the exact steps in float64."""

import re

import numpy as np
import pytest
from test_options import run_main, summary

import main


def facts_of(x, y, batch_size, rate):
    return main.learning_rate_facts(x, y, batch_size, rate)


def epochs_in_float64(x, y, batch_size, rate, epochs, theta):
    """theta = (W, b) after `epochs` epochs of exact steps over the batches."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    for _ in range(epochs):
        for i in range(0, len(x), batch_size):
            bx, by = x[i : i + batch_size], y[i : i + batch_size]
            error = by - (bx * theta[0] + theta[1])
            theta = theta + 2 * rate * np.array([np.mean(bx * error), np.mean(error)])
    return theta


def test_the_cycle_closes_where_the_exact_steps_end_up(default_data):
    """With 1,000 examples in batches of 32 (the last of 8), the point where the
    epoch map leaves W and b in place is where many exact epochs end."""
    facts = facts_of(*default_data, 32, 0.1)
    end = epochs_in_float64(*default_data, 32, 0.1, 60, np.array(main.INITIAL))
    np.testing.assert_allclose(end, facts.cycle, atol=1e-12)
    assert main.distance(facts.cycle, facts.fitted) > 0.1  # far from least squares


def test_as_the_rate_goes_to_0_the_cycle_tends_to_the_sum_of_batch_losses_minimum(
    default_data,
):
    """The limit is the least squares that weighs each example by 1/its batch's
    size, so a smaller last batch moves it away from least squares; the cycle's
    point at small rates approaches it."""
    x, y = (a.astype(np.float64) for a in default_data)
    weights = np.repeat([1 / 32] * 31 + [1 / 8], [32] * 31 + [8])
    design = np.stack([x, np.ones_like(x)], axis=1) * np.sqrt(weights)[:, None]
    weighted = np.linalg.lstsq(design, y * np.sqrt(weights), rcond=None)[0]
    limit = facts_of(*default_data, 32, 0.1).limit
    np.testing.assert_allclose(limit, weighted, atol=1e-10)
    gaps = [
        main.distance(facts_of(*default_data, 32, r).cycle, limit)
        for r in (1e-2, 1e-3, 1e-4)
    ]
    assert gaps[2] < gaps[1] < gaps[0] and gaps[2] < 1e-3
    equal = facts_of(*default_data, 100, 0.1)  # ten batches of 100: no shift
    assert main.distance(equal.limit, equal.fitted) < 1e-12


def test_a_smaller_last_batch_is_said_to_move_the_limit(capsys):
    """--batch-size 32: the verdict gives the cycle's distance and its limit,
    never that a smaller rate lands closer."""
    status, out, _ = run_main(capsys, "--batch-size", "32", "--epochs", "3")
    text = " ".join(out.split())
    facts = facts_of(*main.make_data(1000, 3.0, 2.0, 1.0, 42), 32, 0.1)
    limit = main.distance(facts.limit, facts.fitted)
    assert status == 0 and "have settled into a cycle" in text
    assert f"tends to one {limit:.1e} from least squares" in text
    assert "lands closer" not in text


def test_settled_means_more_epochs_change_nothing(capsys):
    """A run said to head for the cycle gets there with more epochs; once it is
    said to have settled, more epochs end within the tolerance of the same point."""
    argv = ["--num-examples", "60", "--batch-size", "20", "--learning-rate", "0.05"]
    ends, said = [], []
    for epochs in ("2", "40", "80"):
        _, out, _ = run_main(capsys, *argv, "--epochs", epochs)
        ends.append(np.array(summary(out)["learned"][:2]))
        said.append("have settled into a cycle" in " ".join(out.split()))
    assert said == [False, True, True]
    assert main.distance(ends[1], ends[2]) <= 1e-4


def test_a_run_heading_for_the_cycle_is_told_so(capsys):
    argv = ["--num-examples", "60", "--batch-size", "20", "--learning-rate", "0.01"]
    _, out, _ = run_main(capsys, *argv, "--epochs", "2")
    text = " ".join(out.split())
    assert "head for a cycle" in text and "more --epochs take them there" in text


def test_the_epochs_advised_reach_the_tolerance(capsys):
    """At 0.03 (test_options.py checks --epochs 1 at the default rate)."""
    argv = ["--learning-rate", "0.03"]
    status, out, _ = run_main(capsys, *argv)
    advised = re.search(
        r"--epochs (\d+) would reach the tolerance", " ".join(out.split())
    )
    assert status == 0 and advised
    _, out, _ = run_main(capsys, *argv, "--epochs", advised[1])
    assert "Converged" in out


def float32_epochs(x, y, rate, theta, epochs):
    """theta after `epochs` full-batch steps in float32, as train_step takes them."""
    theta, rate = theta.astype(np.float32), np.float32(rate)
    for _ in range(epochs):
        error = y - (x * theta[0] + theta[1])
        gradient = np.float32(-2) * np.array([np.mean(x * error), np.mean(error)])
        theta = theta - rate * gradient
    return theta


@pytest.mark.parametrize(
    "rate, outcome, direction, epochs",
    [(1e-4, "floor", 0, 20_000), ("limit", "swing", 1, 8_000)],
)
def test_float32_stops_training_short_of_least_squares(
    default_data, rate, outcome, direction, epochs
):
    """At 1e-4, W and b stall about `floor` from least squares, where updates
    round away. Just below the limit, the factor along lam_max is near -1: W and b
    swing across least squares, and rounding locks them into a two-step swing no
    farther than `floor` from it, and above the tolerance. Exact steps would come
    far closer: each run starts 3e-3 from least squares along the eigenvector of
    the slowest direction, and its epochs shrink that, exactly, to below 1e-4.
    (float32 steps in NumPy, whose sums round a little differently from
    TensorFlow's.)"""
    facts = facts_of(*default_data, 1000, 0.1)
    rate = facts.stable * (1 - 2.5e-4) if rate == "limit" else rate
    ended = main.how_it_ended(facts_of(*default_data, 1000, rate), (0, 5.0, 0.0), rate)
    assert ended["outcome"] == outcome and ended["floor"] > ended["tolerance"]
    eigenvectors = np.linalg.eigh(main.gradient_terms(facts.means)[0])[1]
    start = facts.fitted + 3e-3 * eigenvectors[:, direction]
    end = float32_epochs(*default_data, rate, start, epochs)
    gap = main.distance(end, facts.fitted)
    assert ended["tolerance"] < gap <= 1.2 * ended["floor"]
    if outcome == "floor":
        assert gap > ended["floor"] / 1.2  # "about"
    again = float32_epochs(*default_data, rate, end, 2)
    assert tuple(again) == tuple(end)  # two more steps change nothing


def test_the_floor_verdict_says_more_epochs_cannot_help(capsys):
    status, out, _ = run_main(capsys, "--learning-rate", "1e-4")
    text = " ".join(out.split())
    assert status == 0
    assert "float32 rounding stops W and b about" in text
    assert "more --epochs cannot reach the tolerance" in text
    assert "Use a larger --learning-rate" in text


@pytest.mark.parametrize(
    "rate, stuck", [("1e-9", "W cannot change"), ("1e-40", "W and b cannot change")]
)
def test_stuck_names_all_that_is_stuck(capsys, train_on, rate, stuck):
    """At 1e-9 b (from 0, where float32's gaps are tiny) still moves and W cannot;
    at 1e-40 b's updates are below float32's smallest normal number, and
    TensorFlow flushes them to 0."""
    status, out, _ = run_main(capsys, "--learning-rate", rate, "--epochs", "3")
    text = " ".join(out.split())
    assert status == 0 and "Not converged: W and b are" in text
    assert (
        "Not converged: W and b are 2.8e+00 from least squares (tolerance 0.0001)."
        f" {stuck}" in text
    )
    x, y = main.make_data(1000, 3.0, 2.0, 1.0, 42)
    history, _ = train_on(x, y, float(rate), 3)
    assert history[-1].w == 5.0 and (history[-1].b > 0) == (rate == "1e-9")


def test_a_long_epoch_shows_rows_part_way_through(capsys, monkeypatch):
    """Between epochs' rows, a row whenever PROGRESS_SECONDS passed, its epoch
    a fraction: 0.200 is a fifth of the way through epoch 1."""
    monkeypatch.setattr(main, "PROGRESS_SECONDS", 0.0)
    argv = ["--num-examples", "50", "--batch-size", "10", "--epochs", "1"]
    _, out, _ = run_main(capsys, *argv)
    steps = re.findall(r"^ +(0\.\d{3}) ", out, re.MULTILINE)
    assert steps == ["0.200", "0.400", "0.600", "0.800"]


def test_batches_are_numpy_views_cut_without_copying(default_data):
    """Cutting is slicing, with no TensorFlow operation per batch (a million
    tensor slices would take minutes); one batch of all is a tensor, once."""
    x, y = default_data
    batches = main.batches_of(x, y, 1)
    assert len(batches) == 1000 and np.shares_memory(batches[5][0], x)
    ((whole_x, _),) = main.batches_of(x, y, 1000)
    assert isinstance(whole_x, main.tf.Tensor)


def test_noise_1e9_keeps_the_tables_columns(capsys):
    status, out, _ = run_main(capsys, "--noise", "1e9", "--epochs", "3")
    rows = [line for line in out.splitlines() if re.match(r" +\d+  ", line)]
    assert status == 0 and len(rows) == 4
    assert {len(row) for row in rows} == {len("  epoch") + 2 + 10 + 2 + 10 + 2 + 12}
    assert all(len(field) <= 12 for row in rows for field in row.split())


def test_counts_have_thousands_separators(capsys):
    class Args:
        epochs, eager, jit_compile, learning_rate = 2000, False, False, 0.1
        num_examples, noise, seed = 1500, 1.0, 42

    facts = facts_of(*main.make_data(1500, 3.0, 2.0, 1.0, 42), 1, 0.1)
    main.print_header(Args, facts)
    out = capsys.readouterr().out
    assert "Training: 2,000 epochs of 1,500 batches of 1 from" in out


def test_contour_rings_are_evenly_spaced_even_without_noise(monkeypatch, tmp_path):
    """Levels spaced as squares of the distance from the bottom: with --noise 0
    too (whose bottom is near 0), all 15 rings show, evenly spaced."""
    pytest.importorskip("matplotlib")
    from matplotlib.axes import Axes

    drawn = {}
    real_contour = Axes.contour
    monkeypatch.setattr(
        Axes,
        "contour",
        lambda ax, *a, **k: drawn.update(levels=a[3]) or real_contour(ax, *a, **k),
    )
    x, y = main.make_data(100, 3.0, 2.0, 0.0, 0)
    facts = facts_of(x, y, 100, 0.1)
    row = main.Row(1, 4.0, 1.0, 1.0, None)
    main.draw(
        str(tmp_path / "f.png"), x, y, [row], np.array([[5.0, 0.0], [4.0, 1.0]]), facts
    )
    bottom = main.loss_at(facts.means, *facts.fitted)
    radii = np.sqrt(np.array(drawn["levels"]) - bottom)
    assert len(radii) == 15
    np.testing.assert_allclose(np.diff(radii), radii[0], rtol=1e-3)
