"""Every verdict is tested against what it claims: "--epochs N would reach the
tolerance" against N epochs, float32's floor against a long run; and README's
numbers on mini-batches against exact steps in float64."""

import re

import numpy as np
import pytest
from test_options import run_main

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


def cycle_point(x, y, batch_size, rate):
    """Where every epoch ends once W and b have settled: an epoch of steps in
    order is theta -> A @ theta + a, and the point is where that changes nothing."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    maps, shift = np.eye(2), np.zeros(2)
    for i in range(0, len(x), batch_size):
        bx, by = x[i : i + batch_size], y[i : i + batch_size]
        hessian = 2 * np.array([[np.mean(bx * bx), np.mean(bx)], [np.mean(bx), 1]])
        step = np.eye(2) - rate * hessian
        maps = step @ maps
        shift = step @ shift + 2 * rate * np.array([np.mean(bx * by), np.mean(by)])
    return np.linalg.solve(np.eye(2) - maps, shift)


def test_readme_mini_batch_numbers_the_cycle_and_its_limit(default_data):
    """README's Mini-batches section: at --batch-size 32 (the last batch of 8) and
    rate 0.1, every epoch ends at one point 0.15 from least squares (many exact
    epochs end there); as the rate goes to 0, that point tends to the least
    squares that weighs each example by 1/its batch's size, 0.016 from it; with
    equal batches, to least squares itself."""
    fitted = facts_of(*default_data, 1000, 0.1).fitted
    point = cycle_point(*default_data, 32, 0.1)
    end = epochs_in_float64(*default_data, 32, 0.1, 60, np.array(main.INITIAL))
    np.testing.assert_allclose(end, point, atol=1e-12)
    assert f"{main.distance(point, fitted):.2f}" == "0.15"
    x, y = (a.astype(np.float64) for a in default_data)
    weights = np.repeat([1 / 32] * 31 + [1 / 8], [32] * 31 + [8])
    design = np.stack([x, np.ones_like(x)], axis=1) * np.sqrt(weights)[:, None]
    weighted = np.linalg.lstsq(design, y * np.sqrt(weights), rcond=None)[0]
    assert f"{main.distance(weighted, fitted):.3f}" == "0.016"
    gaps = [
        main.distance(cycle_point(*default_data, 32, r), weighted)
        for r in (1e-2, 1e-3, 1e-4)
    ]
    assert gaps[2] < gaps[1] < gaps[0] and gaps[2] < 1e-3
    equal = cycle_point(*default_data, 100, 1e-5)  # ten batches of 100
    assert main.distance(equal, fitted) < 1e-4


def test_with_batches_the_verdict_claims_no_destination(capsys):
    """--batch-size 32: W and b settle 0.15 from least squares, and no rate
    reaches it, so the verdict promises neither more epochs nor a smaller rate."""
    status, out, _ = run_main(capsys, "--batch-size", "32", "--epochs", "3")
    text = " ".join(out.split())
    assert status == 0 and "need not end at least squares" in text
    assert "--epochs" not in text.split("Not converged")[1]
    assert "closer" not in text and "Use a" not in text


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


class Ended:
    """A table that ended at (W, b) = (5, 0), for how_it_ended()."""

    diverged = None
    last = main.Row(0, 5.0, 0.0, 8.0, None)


@pytest.mark.parametrize(
    "rate, can, direction, epochs",
    [(1e-4, "cannot", 0, 20_000), ("limit", "may not", 1, 8_000)],
)
def test_float32_stops_training_short_of_least_squares(
    default_data, rate, can, direction, epochs
):
    """At 1e-4, W and b stall about `floor` from least squares, where updates
    round away. Just below the limit, the factor along lam_max is near -1: W and b
    swing across least squares, and rounding locks them into a two-step swing no
    farther than `floor` from it, and above the tolerance. Exact steps would come
    far closer: each run starts 3e-3 from least squares along the axis of the
    slowest shrink, and its epochs shrink that, exactly, to below 1e-4. (float32
    steps in NumPy, whose sums round a little differently from TensorFlow's.)"""
    facts = facts_of(*default_data, 1000, 0.1)
    rate = facts.stable * (1 - 2.5e-4) if rate == "limit" else rate
    ended = main.how_it_ended(facts_of(*default_data, 1000, rate), Ended, rate)
    assert ended["outcome"] == "floor" and ended["can"] == can
    assert ended["floor"] > ended["tolerance"]
    x = default_data[0].astype(np.float64)
    hessian = 2 * np.array([[np.mean(x * x), np.mean(x)], [np.mean(x), 1]])
    eigenvectors = np.linalg.eigh(hessian)[1]
    start = facts.fitted + 3e-3 * eigenvectors[:, direction]
    end = float32_epochs(*default_data, rate, start, epochs)
    gap = main.distance(end, facts.fitted)
    assert ended["tolerance"] < gap <= 1.2 * ended["floor"]
    if can == "cannot":
        assert gap > ended["floor"] / 1.2  # "about"
    again = float32_epochs(*default_data, rate, end, 2)
    assert tuple(again) == tuple(end)  # two more steps change nothing


def test_the_floor_verdict_says_more_epochs_cannot_help(capsys):
    status, out, _ = run_main(capsys, "--learning-rate", "1e-4")
    text = " ".join(out.split())
    assert status == 0
    assert "float32 rounding stops W and b short of the tolerance" in text
    assert "More --epochs cannot reach it." in text
    assert "Use a larger --learning-rate" in text


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
