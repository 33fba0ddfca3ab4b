"""Each claim in main.py's comments, proven: these fail if a claim is false."""

import re
from pathlib import Path

import numpy as np
import pytest

import main

tf = main.tf


def hand_gradients(x, y, w, b):
    """dL/dW and dL/db for L = mean((y - (x*w + b))**2), derived by hand."""
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    error = y64 - (x64 * w + b)
    return -2.0 * np.mean(x64 * error), -2.0 * np.mean(error)


def tape_gradients(model, x, y):
    with tf.GradientTape() as tape:
        loss = main.mean_squared_error(y, model(x))
    return [g.numpy() for g in tape.gradient(loss, [model.w, model.b])]


@pytest.mark.parametrize("w, b", [(5.0, 0.0), (3.0, 2.0), (-1.5, 4.0), (0.0, -7.0)])
def test_tape_gradients_match_hand_derivation(default_data, w, b):
    """GradientTape gives dL/dW = -2*mean(x*(y - f(x))), dL/db = -2*mean(y - f(x))."""
    x, y = default_data
    got = tape_gradients(main.LinearModel(w, b), x, y)
    np.testing.assert_allclose(got, hand_gradients(x, y, w, b), rtol=1e-5, atol=1e-5)


def test_one_step_moves_w_and_b_by_minus_learning_rate_times_gradient(default_data):
    """train_step's update is exactly W -= lr*dL/dW and b -= lr*dL/db."""
    x, y = default_data
    model = main.LinearModel(5.0, 0.0)
    grad_w, grad_b = tape_gradients(model, x, y)
    main.train_step(model, x, y, learning_rate=0.1)
    lr = np.float32(0.1)
    assert model.w.numpy() == pytest.approx(np.float32(5.0) - lr * grad_w, abs=1e-6)
    assert model.b.numpy() == pytest.approx(np.float32(0.0) - lr * grad_b, abs=1e-6)


def test_constant_is_not_watched_unless_tape_watch_is_called():
    """A tf.constant gets no gradient (None) until tape.watch(constant)."""
    constant = tf.constant(3.0)
    with tf.GradientTape() as tape:
        square = constant * constant
    assert tape.gradient(square, constant) is None
    with tf.GradientTape() as tape:
        tape.watch(constant)
        square = constant * constant
    assert tape.gradient(square, constant).numpy() == pytest.approx(6.0)


def test_loss_computed_outside_the_tape_has_no_gradient(default_data):
    """The tape only sees what runs inside `with`: a loss from outside gives None."""
    x, y = default_data
    model = main.LinearModel(5.0, 0.0)
    with tf.GradientTape() as tape:
        pass
    loss = main.mean_squared_error(y, model(x))
    assert tape.gradient(loss, model.w) is None


def test_assign_sub_updates_in_place_and_reassignment_breaks_the_tape(default_data):
    """assign_sub keeps the same Variable; `w = w - ...` leaves a tensor: None."""
    x, y = default_data
    model = main.LinearModel(5.0, 0.0)
    variable = model.w
    model.w.assign_sub(0.5)
    assert model.w is variable and model.w.numpy() == pytest.approx(4.5)

    model.w = model.w - 0.5  # the mistake: a plain tensor replaces the Variable
    assert not isinstance(model.w, tf.Variable)
    assert len(model.trainable_variables) == 1  # only b is left to train
    with tf.GradientTape() as tape:
        loss = main.mean_squared_error(y, model(x))
    assert tape.gradient(loss, model.w) is None


def test_a_bias_made_with_tf_zeros_cannot_be_updated():
    """tf.zeros makes an immutable tensor: it has no assign_sub at all."""
    with pytest.raises(AttributeError, match="assign_sub"):
        tf.zeros(()).assign_sub(1.0)


def test_model_holds_two_float32_trainable_variables():
    """Python floats make float32 Variables, and tf.Module finds both."""
    model = main.LinearModel(5.0, 0.0)
    names = sorted(v.name for v in model.trainable_variables)
    assert names == ["b:0", "w:0"]
    assert all(v.dtype == tf.float32 for v in model.trainable_variables)


def test_mixing_float64_data_with_float32_variable_raises():
    """NumPy's default float64 does not mix with a float32 Variable: an error."""
    float64_x = tf.constant(np.linspace(-1.0, 1.0, 5))
    assert float64_x.dtype == tf.float64
    with pytest.raises(tf.errors.InvalidArgumentError):
        main.LinearModel(5.0, 0.0)(float64_x)
    assert main.make_data(5, 3.0, 2.0, 1.0, 0)[0].dtype == np.float32


def test_tape_gives_gradients_once():
    """A non-persistent tape frees its record after one gradient call."""
    variable = tf.Variable(2.0)
    with tf.GradientTape() as tape:
        square = variable * variable
    assert tape.gradient(square, variable).numpy() == pytest.approx(4.0)
    with pytest.raises(RuntimeError, match="non-persistent"):
        tape.gradient(square, variable)


def test_tf_function_traces_once_then_reuses_the_graph(default_data):
    """Python runs once to trace; later calls with the same inputs reuse it."""
    x, y = (tf.constant(a) for a in default_data)
    step = main.make_step(eager=False)
    model = main.LinearModel(5.0, 0.0)
    for _ in range(5):
        step(model, x, y, 0.1)
    assert step.experimental_get_tracing_count() == 1
    assert main.make_step(eager=True) is main.train_step


def test_noise_floor_least_squares_beats_the_true_line(train_on):
    """On noisy data the least-squares loss <= loss at W=3, b=2, both ~ noise**2."""
    for noise in (0.5, 1.0, 2.0):
        x, y = main.make_data(10_000, 3.0, 2.0, noise, seed=1)
        fitted_loss = main.loss_float64(x, y, *main.least_squares(x, y))
        true_loss = main.loss_float64(x, y, 3.0, 2.0)
        assert fitted_loss <= true_loss
        # mean(noise**2) has a relative spread of sqrt(2/n) = 1.4% here.
        assert fitted_loss == pytest.approx(noise**2, rel=0.1)
        assert true_loss == pytest.approx(noise**2, rel=0.1)


def test_least_squares_is_exact(default_data):
    """The closed form agrees with NumPy's own least-squares solver."""
    x, y = default_data
    design = np.stack([x.astype(np.float64), np.ones(x.size)], axis=1)
    expected = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)[0]
    np.testing.assert_allclose(main.least_squares(x, y), expected, rtol=1e-12)


def test_hessian_of_the_loss_is_the_formula_in_stability_limit(default_data):
    """Two nested tapes give H = 2*[[mean(x**2), mean(x)], [mean(x), 1]]."""
    x64, y64 = (tf.constant(a.astype(np.float64)) for a in default_data)
    params = tf.Variable([5.0, 0.0], dtype=tf.float64)
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            loss = tf.reduce_mean(tf.square(y64 - (x64 * params[0] + params[1])))
        gradient = inner.gradient(loss, params)
    hessian = outer.jacobian(gradient, params).numpy()
    x = x64.numpy()
    formula = 2.0 * np.array([[np.mean(x * x), np.mean(x)], [np.mean(x), 1.0]])
    np.testing.assert_allclose(hessian, formula, rtol=1e-12)
    limit = 2.0 / np.linalg.eigvalsh(hessian).max()
    assert main.stability_limit(default_data[0]) == pytest.approx(limit, rel=1e-12)


def test_learning_rate_stability_limit_separates_converge_from_diverge(
    default_data, train_on
):
    """Just below the limit training converges; just above it diverges."""
    x, y = default_data
    limit = main.stability_limit(x)
    below = train_on(x, y, 0.95 * limit, epochs=400)
    above = train_on(x, y, 1.05 * limit, epochs=400)
    fitted = main.least_squares(x, y)
    assert not below.diverged
    np.testing.assert_allclose(
        (below.history[-1].w, below.history[-1].b), fitted, atol=1e-4
    )
    assert above.diverged


@pytest.mark.parametrize("start", [(5.0, 0.0), (0.0, 0.0), (-20.0, 30.0), (3.0, 2.0)])
def test_gradient_descent_reaches_least_squares_from_any_start(
    default_data, train_on, start
):
    """The loss is a bowl with one bottom: every start ends at least squares."""
    x, y = default_data
    result = train_on(x, y, main.LEARNING_RATE, epochs=200, start=start)
    final = (result.history[-1].w, result.history[-1].b)
    np.testing.assert_allclose(final, main.least_squares(x, y), atol=1e-4)


def test_the_mission_true_line_is_three_and_two(default_run):
    """The data comes from W=3, b=2, and the defaults learn them within 0.1."""
    assert (main.TRUE_W, main.TRUE_B) == (3.0, 2.0)
    x, y = main.make_data(100, main.TRUE_W, main.TRUE_B, 0.0, seed=0)
    np.testing.assert_allclose(y, 3.0 * x + 2.0, rtol=1e-6)
    final = default_run.history[-1]
    assert abs(final.w - 3.0) < 0.1 and abs(final.b - 2.0) < 0.1


def test_every_test_cited_in_main_py_exists():
    """main.py's comments cite tests by name (or name prefix); each one exists."""
    cited = set(re.findall(r"\b(test_[a-z0-9_]+)", Path(main.__file__).read_text()))
    defined = {
        name
        for path in Path(__file__).parent.glob("test_*.py")
        for name in re.findall(r"^def (test_\w+)", path.read_text(), re.MULTILINE)
    }
    assert len(cited) >= 8
    for name in cited:
        assert any(test.startswith(name.rstrip("_")) for test in defined), name
