"""The claims in main.py's lesson comments, checked in the order main.py makes them.

Every test here fails if the claim it is named for is false. The claims about
speed (XLA's fewer passes) are measurements, not tests:
README's Performance section gives them. The Keras claims are checked in
test_keras.py.
"""

import itertools
import re

import numpy as np
import pytest
from test_training import loss_float64

import main

tf = main.tf


def rates(x, batch_size):
    """(stable below, balanced) as main.py computes them for x in these batches."""
    facts = main.learning_rate_facts(x, np.zeros_like(x), batch_size, 0.1)
    return facts.stable, facts.balanced


def least_squares(x, y):
    """Least squares as main.py computes it (section 7)."""
    return tuple(main.learning_rate_facts(x, y, len(x), 0.1).fitted)


def hand_gradients(x, y, w, b):
    """dL/dW and dL/db for L = mean((y - (x*w + b))**2), derived by hand."""
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    error = y64 - (x64 * w + b)
    return -2.0 * np.mean(x64 * error), -2.0 * np.mean(error)


def tape_gradients(model, x, y):
    with tf.GradientTape() as tape:
        loss = main.mean_squared_error(y, model(x))
    return [g.numpy() for g in tape.gradient(loss, [model.w, model.b])]


# --- Start-up ---------------------------------------------------------------------
LOG_SOURCE = re.compile(
    r"^(?:[IW]\d{4} .*? |.*?: [IW] .*/)(\w+\.(?:cc|h)):\d+\]", re.MULTILINE
)


def test_log_level_hides_info_lines_only_when_set_before_the_import(
    interrupted_run, after_import_run
):
    """Both runs import TensorFlow and run main.py. Some of TensorFlow's INFO
    lines (on x86-64, cpu_feature_guard's, on the CPU instructions it could use)
    that main.py's early "2" hides, the same "2" set after `import tensorflow`
    lets through."""
    _, main_py_output = interrupted_run  # main.py, set before the import
    _, after_import_err = after_import_run
    shown_anyway = set(LOG_SOURCE.findall(main_py_output))
    assert set(LOG_SOURCE.findall(after_import_err)) - shown_anyway


# --- 1. Data ------------------------------------------------------------------------
def test_same_seed_gives_the_same_data_and_another_seed_other_data():
    """With one NumPy, the seed alone decides the data."""
    first, again = (main.make_data(100, 3.0, 2.0, 1.0, seed=5) for _ in range(2))
    other = main.make_data(100, 3.0, 2.0, 1.0, seed=6)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])


def test_data_is_float32_like_the_variables():
    x, y = main.make_data(5, 3.0, 2.0, 1.0, seed=0)
    assert x.dtype == y.dtype == np.float32
    assert main.LinearModel(5.0, 0.0).w.dtype == tf.float32


def test_float64_tensor_times_float32_variable_raises_eagerly():
    float64_x = tf.constant(np.linspace(-1.0, 1.0, 5))
    assert float64_x.dtype == tf.float64
    with pytest.raises(tf.errors.InvalidArgumentError):
        main.LinearModel(5.0, 0.0)(float64_x)


def test_float64_tensor_times_float32_variable_is_a_type_error_when_tracing():
    model = main.LinearModel(5.0, 0.0)
    with pytest.raises(TypeError, match="float32 that does not match type float64"):
        tf.function(model.__call__)(tf.constant(np.linspace(-1.0, 1.0, 5)))


def test_float64_numpy_array_times_float32_variable_quietly_becomes_float32():
    float64_x = np.linspace(-1.0, 1.0, 5)
    assert float64_x.dtype == np.float64
    assert main.LinearModel(5.0, 0.0)(float64_x).dtype == tf.float32


def test_float64_numpy_array_times_float32_variable_is_a_type_error_in_tf_function():
    with pytest.raises(TypeError, match="float32 that does not match type float64"):
        tf.function(main.LinearModel(5.0, 0.0).__call__)(np.linspace(-1.0, 1.0, 5))


def test_noise_floor_least_squares_beats_the_true_line():
    """On noisy data the least-squares loss <= loss at W=3, b=2, both ~ noise**2."""
    for noise in (0.5, 1.0, 2.0):
        x, y = main.make_data(10_000, 3.0, 2.0, noise, seed=1)
        fitted_loss = loss_float64(x, y, *least_squares(x, y))
        true_loss = loss_float64(x, y, 3.0, 2.0)
        assert fitted_loss <= true_loss
        # mean(noise**2) has a relative spread of sqrt(2/n) = 1.4% here.
        assert fitted_loss == pytest.approx(noise**2, rel=0.1)
        assert true_loss == pytest.approx(noise**2, rel=0.1)


# --- 2. Model -----------------------------------------------------------------------
def test_a_bias_made_with_tf_zeros_has_no_assign_sub():
    """TensorFlow's own words, quoted in README's FAQ."""
    with pytest.raises(AttributeError) as error:
        tf.zeros(()).assign_sub(1.0)
    assert str(error.value) == (
        "'tensorflow.python.framework.ops.EagerTensor' object has no attribute "
        "'assign_sub'"
    )


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


def test_model_holds_two_float32_trainable_variables_sorted_by_name():
    """Python floats make float32 Variables; tf.Module lists both, b before w."""
    model = main.LinearModel(5.0, 0.0)
    assert [v.name for v in model.trainable_variables] == ["b:0", "w:0"]
    assert all(v.dtype == tf.float32 for v in model.trainable_variables)


# --- 3. Loss ------------------------------------------------------------------------
def test_loss_is_one_scalar_the_mean_of_the_squared_misses():
    loss = main.mean_squared_error(tf.constant([1.0, 2.0]), tf.constant([3.0, 1.0]))
    assert loss.shape == () and float(loss) == pytest.approx((4.0 + 1.0) / 2)


# --- 4. One training step -----------------------------------------------------------
def test_loss_computed_outside_the_tape_has_no_gradient(default_data):
    """The tape only sees what runs inside `with`: a loss from outside gives None."""
    x, y = default_data
    model = main.LinearModel(5.0, 0.0)
    with tf.GradientTape() as tape:
        pass
    loss = main.mean_squared_error(y, model(x))
    assert tape.gradient(loss, model.w) is None


def test_gradient_inside_the_block_stops_a_tape_recording():
    """After gradient() inside `with`, a non-persistent tape sees nothing more."""
    w, unseen = tf.Variable(2.0), tf.Variable(1.0)
    with tf.GradientTape() as tape:
        loss = w * w
        tape.gradient(loss, w)
        unseen * 3.0  # after the call: not recorded
    assert [v.ref() for v in tape.watched_variables()] == [w.ref()]
    with tf.GradientTape() as tape:  # the same lines, without the early call
        loss = w * w
        unseen * 3.0
    assert len(tape.watched_variables()) == 2


def test_gradient_inside_a_persistent_tape_records_the_gradient_itself():
    """Only then is the gradient differentiable again: a second derivative."""
    w = tf.Variable(2.0)
    with tf.GradientTape(persistent=True) as tape:
        first = tape.gradient(w * w, w)  # d(w*w)/dw = 2w, recorded
    assert float(tape.gradient(first, w)) == pytest.approx(2.0)
    with tf.GradientTape(persistent=True) as tape:
        square = w * w
    first = tape.gradient(square, w)  # after the block: not recorded
    assert tape.gradient(first, w) is None


def test_tape_gives_gradients_once():
    """A non-persistent tape frees its record after one gradient call."""
    variable = tf.Variable(2.0)
    with tf.GradientTape() as tape:
        square = variable * variable
    assert tape.gradient(square, variable).numpy() == pytest.approx(4.0)
    with pytest.raises(RuntimeError, match="non-persistent"):
        tape.gradient(square, variable)


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
    assert model.w.numpy() == np.float32(5.0) - lr * grad_w
    assert model.b.numpy() == np.float32(0.0) - lr * grad_b


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


def test_reassignment_inside_tf_function_silently_stops_the_variable(default_data):
    """In a tf.function, `model.w = model.w - ...` raises nothing: the graph holds
    no update of the Variable, which never changes, and model.w is left holding a
    tensor from tracing that float() rejects."""
    x, y = (tf.constant(a) for a in default_data)

    def reassigning_step(model):
        with tf.GradientTape() as tape:
            loss = main.mean_squared_error(y, model(x))
        dloss_dw = tape.gradient(loss, model.w)
        model.w = model.w - 0.1 * dloss_dw  # the mistake, inside a graph
        return loss

    model = main.LinearModel(5.0, 0.0)
    variable, step = model.w, tf.function(reassigning_step)
    step(model)
    step(model)
    assert float(variable) == 5.0 and not isinstance(model.w, tf.Variable)
    with pytest.raises(TypeError, match="float"):
        float(model.w)


# --- 5. tf.function -----------------------------------------------------------------
def test_tf_function_traces_once_then_reuses_the_graph(default_data):
    """Python runs once to trace; later calls with the same inputs reuse it."""
    x, y = (tf.constant(a) for a in default_data)
    step = main.make_step()
    model = main.LinearModel(5.0, 0.0)
    for _ in range(5):
        step(model, x, y, 0.1)
    assert step.experimental_get_tracing_count() == 1
    assert main.make_step(eager=True) is main.train_step


def test_tf_function_traces_again_for_a_new_shape_dtype_or_python_value():
    scale = tf.function(lambda x, factor: x * factor)
    counts = []
    for x, factor in [
        (tf.ones(4), 0.1),
        (tf.ones(4), 0.1),  # seen before: the graph is reused
        (tf.ones(5), 0.1),  # new shape
        (tf.ones(5, tf.float64), 0.1),  # new dtype
        (tf.ones(5), 0.2),  # new Python value
    ]:
        scale(x, factor)
        counts.append(scale.experimental_get_tracing_count())
    assert counts == [1, 1, 2, 3, 4]


def test_numpy_arrays_are_converted_anew_on_every_call():
    """The graph is reused, yet each call reads the array's current values."""
    step, model = main.make_step(), main.LinearModel(0.0, 0.0)
    x, y = np.ones(3, np.float32), np.zeros(3, np.float32)
    assert float(step(model, x, y, 0.0)) == 0.0
    y[:] = 2.0  # change the NumPy array in place
    assert float(step(model, x, y, 0.0)) == 4.0
    assert step.experimental_get_tracing_count() == 1


def test_run_functions_eagerly_runs_the_python_on_every_call():
    """The debugging switch: print() and pdb inside a tf.function work again."""
    python_runs = []

    @tf.function
    def double(x):
        python_runs.append(1)
        return 2.0 * x

    for _ in range(3):
        double(tf.constant(1.0))
    assert len(python_runs) == 1  # traced once
    tf.config.run_functions_eagerly(True)
    try:
        for _ in range(3):
            double(tf.constant(1.0))
    finally:
        tf.config.run_functions_eagerly(False)
    assert len(python_runs) == 4


# --- 6. The loop --------------------------------------------------------------------
@pytest.mark.parametrize(
    "losses, diverged_at",
    [
        ([1.0, 5.0, 10.0, 3.0], None),
        ([1.0, 5.0, 10.5, 3.0], 2),
        ([1.0, np.inf, 3.0], 1),
        ([1.0, np.nan, 3.0], 1),
    ],
)
def test_report_stops_train_when_the_loss_is_not_finite_or_over_10_times_its_start(
    monkeypatch, losses, diverged_at
):
    """Up to 10 times the starting loss, training goes on; beyond it, or at a loss
    that is not a number, main.py's report() stops train() at once, and keeps the
    diverged epoch apart from the table's rows."""
    scripted, steps = iter(losses), []
    monkeypatch.setattr(main, "loss_at", lambda means, w, b: next(scripted))
    x, y = main.make_data(2, 3.0, 2.0, 1.0, seed=0)
    epochs = len(losses) - 1
    table = main.Progress(epochs, main.learning_rate_facts(x, y, 2, 0.1))

    def counted_step(model, x, y, rate):
        steps.append(rate)
        return 0.0

    batches = main.batches_of(x, y, 2)
    main.train(main.LinearModel(0.0, 0.0), batches, 0.1, epochs, counted_step, table)
    assert len(table.kept) == (diverged_at or len(losses))
    assert len(steps) == (diverged_at or epochs)
    if diverged_at is None:
        assert table.diverged is None
    else:
        assert table.diverged.epoch == diverged_at


def test_batches_are_one_update_each_in_order(default_data, train_on):
    """batch_size=B: an epoch is the step over x[0:B], x[B:2B], ... in turn,
    including a smaller last batch; batch_loss is their size-weighted mean."""
    x, y = default_data[0][:100], default_data[1][:100]
    history, _ = train_on(x, y, 0.1, 2, batch_size=30)
    model, step, losses = main.LinearModel(*main.INITIAL), main.make_step(), []
    for start in (0, 30, 60, 90) * 2:
        batch = (tf.constant(x[start : start + 30]), tf.constant(y[start : start + 30]))
        losses.append(float(step(model, *batch, 0.1)))
    assert (history[-1].w, history[-1].b) == (float(model.w), float(model.b))
    expected = np.average(losses[4:], weights=[30, 30, 30, 10])
    assert history[-1].batch_loss == pytest.approx(expected, rel=1e-6)


def test_full_batch_loss_fit_reports_is_the_loss_one_epoch_back(default_run):
    """With one batch, the mean of an epoch's batch losses is its one loss,
    taken before the update: the previous row's loss."""
    history, _ = default_run
    assert history[0].batch_loss is None
    for before, after in itertools.pairwise(history[:21]):
        assert after.batch_loss == pytest.approx(before.loss, rel=1e-6)


def test_steps_below_the_limit_lower_the_loss_until_rounding_matters(default_data):
    """The same steps in float64: every epoch lowers the loss, as long as the
    loss is above least squares' by more than float64's rounding can blur."""
    x, y = (a.astype(np.float64) for a in default_data)
    limit, _ = rates(default_data[0], 1000)
    floor = loss_float64(x, y, *least_squares(x, y))
    for rate in (0.1, 0.9, 0.99 * limit):
        w, b, losses = 5.0, 0.0, []
        for _ in range(300):
            error = y - (x * w + b)
            losses.append(np.mean(error**2))
            w, b = w + rate * 2 * np.mean(x * error), b + rate * 2 * np.mean(error)
        losses = np.array(losses)
        above_rounding = losses[1:] - floor > 1e-12 * floor
        assert above_rounding[:20].all()  # so there is something to check
        assert np.all(np.diff(losses)[above_rounding] < 0), rate


def test_float32_loss_wobbles_only_in_its_last_digits(default_data, train_on):
    """In float32 the converged loss can rise, by about 1e-7 of itself at most."""
    history, _ = train_on(*default_data, 0.9, 150)
    losses = np.array([state.loss for state in history])
    rises = np.diff(losses) / losses[:-1]
    assert np.any(rises > 0)  # it does rise, so "never" would be false
    assert np.all(rises <= 1e-6)


# --- 7. The exact answer ------------------------------------------------------------
def test_least_squares_is_exact(default_data):
    """The closed form agrees with NumPy's own least-squares solver."""
    x, y = default_data
    design = np.stack([x.astype(np.float64), np.ones(x.size)], axis=1)
    expected = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)[0]
    np.testing.assert_allclose(least_squares(x, y), expected, rtol=1e-12)


def test_hessian_of_the_loss_is_the_formula_in_stable_and_balanced_rates(
    default_data,
):
    """Two nested tapes give H = 2*[[mean(x**2), mean(x)], [mean(x), 1]], and the
    rates come from its eigenvalues: 2/lam_max and 2/(lam_min + lam_max)."""
    x64, y64 = (tf.constant(a.astype(np.float64)) for a in default_data)
    params = tf.Variable([5.0, 0.0], dtype=tf.float64)
    with tf.GradientTape(persistent=True) as outer:
        with tf.GradientTape() as inner:
            loss = tf.reduce_mean(tf.square(y64 - (x64 * params[0] + params[1])))
        dloss_dw, dloss_db = tf.unstack(inner.gradient(loss, params))
    hessian = np.array(
        [outer.gradient(g, params).numpy() for g in (dloss_dw, dloss_db)]
    )
    x = x64.numpy()
    formula = 2.0 * np.array([[np.mean(x * x), np.mean(x)], [np.mean(x), 1.0]])
    np.testing.assert_allclose(hessian, formula, rtol=1e-12)
    lam_min, lam_max = np.linalg.eigvalsh(hessian)
    limit, balanced = rates(default_data[0], 1000)
    assert limit == pytest.approx(2 / lam_max, rel=1e-12)
    assert balanced == pytest.approx(2 / (lam_min + lam_max), rel=1e-12)


def test_with_x_from_n01_the_hessian_is_about_2i(default_data):
    """So the limit is about 1 and the balanced rate about 0.5, where a step
    shrinks d by over 95% in every direction (section 7)."""
    x = default_data[0].astype(np.float64)
    limit, balanced = rates(default_data[0], 1000)
    assert 0.9 < limit < 1.1 and 0.45 < balanced < 0.55
    hessian = 2.0 * np.array([[np.mean(x * x), np.mean(x)], [np.mean(x), 1.0]])
    assert np.max(np.abs(1 - 0.5 * np.linalg.eigvalsh(hessian))) < 0.05


def test_one_step_multiplies_the_distance_by_i_minus_rate_times_h(default_data):
    """d -> (I - rate*H) d, for the distance d from least squares (float64)."""
    x, y = (a.astype(np.float64) for a in default_data)
    fitted = np.array(least_squares(*default_data))
    hessian = 2.0 * np.array([[np.mean(x * x), np.mean(x)], [np.mean(x), 1.0]])
    w, b = 5.0, 0.0
    grad_w, grad_b = hand_gradients(x, y, w, b)
    after = np.array([w - 0.3 * grad_w, b - 0.3 * grad_b])
    expected = (np.eye(2) - 0.3 * hessian) @ (np.array([w, b]) - fitted)
    np.testing.assert_allclose(after - fitted, expected, atol=1e-9)


def test_balanced_rate_has_the_smallest_worst_factor(default_data):
    """max |1 - rate*lam| over both eigenvalues is least at the balanced rate."""
    x = default_data[0].astype(np.float64)
    hessian = 2.0 * np.array([[np.mean(x * x), np.mean(x)], [np.mean(x), 1.0]])
    lams = np.linalg.eigvalsh(hessian)
    _, balanced = rates(default_data[0], 1000)
    grid = np.linspace(0.01, 0.99, 981)
    worst = np.max(np.abs(1 - np.outer(grid, lams)), axis=1)
    assert abs(grid[np.argmin(worst)] - balanced) < 1e-3


def test_each_batch_limit_is_from_its_own_hessian(default_data):
    """With batches, the limit returned is the smallest 2/lam_max of any batch
    (the last one smaller), and no balanced rate is given."""
    x = default_data[0][:100]
    limits = []
    for start in range(0, 100, 30):
        part = x[start : start + 30].astype(np.float64)
        h = 2.0 * np.array([[np.mean(part * part), np.mean(part)], [np.mean(part), 1]])
        limits.append(2 / np.linalg.eigvalsh(h)[-1])
    limit, balanced = rates(x, 30)
    assert limit == pytest.approx(min(limits), rel=1e-12) and balanced is None


def test_below_the_batch_limit_no_step_moves_away_from_its_batchs_best_fit(
    default_data,
):
    """What the header's "stable below ... for every batch's step" means: below it,
    no step moves W and b farther from its own batch's least squares; just above
    it, some step does (float64, by hand)."""
    x, y = default_data[0][:100], default_data[1][:100]
    limit, _ = rates(x, 30)
    rng = np.random.default_rng(0)
    for rate, moves_away in ((0.999 * limit, False), (1.05 * limit, True)):
        farther = []
        for start in range(0, 100, 30):
            bx, by = x[start : start + 30], y[start : start + 30]
            best = np.array(least_squares(bx, by))
            for start_wb in best + rng.normal(size=(200, 2)):
                step = rate * np.array(hand_gradients(bx, by, *start_wb))
                before, after = start_wb - best, start_wb - step - best
                farther.append(np.linalg.norm(after) > np.linalg.norm(before))
        assert any(farther) == moves_away


def test_learning_rate_stability_limit_separates_converge_from_diverge(
    default_data, train_on
):
    """Just below the limit training converges; just above it diverges."""
    limit, _ = rates(default_data[0], 1000)
    below, below_diverged = train_on(*default_data, 0.95 * limit, epochs=200)
    _, above_diverged = train_on(*default_data, 1.05 * limit, epochs=200)
    fitted = least_squares(*default_data)
    assert not below_diverged and above_diverged
    np.testing.assert_allclose((below[-1].w, below[-1].b), fitted, atol=1e-4)


def test_just_below_the_limit_d_flips_sign_and_shrinks_slowly(default_data, train_on):
    """At 0.96 (the limit is 0.9699) W swings across least squares each epoch, and
    100 epochs do not converge; balanced, 10 do."""
    limit, balanced = rates(default_data[0], 1000)
    fitted = np.array(least_squares(*default_data))

    def gap_after(rate, epochs):
        history, _ = train_on(*default_data, rate, epochs)
        return np.max(np.abs(np.array([history[-1].w, history[-1].b]) - fitted))

    assert gap_after(balanced, 10) < 1e-4
    assert 0.96 < limit and gap_after(0.96, 100) > 1e-4
    history, _ = train_on(*default_data, 0.96, 6)
    signs = np.sign([row.w - fitted[0] for row in history])
    assert all(signs[1:] == -signs[:-1])  # it flips at every step


@pytest.mark.parametrize("start", [(5.0, 0.0), (0.0, 0.0), (-20.0, 30.0), (3.0, 2.0)])
def test_gradient_descent_reaches_least_squares_from_any_start(
    default_data, train_on, start
):
    """The loss is a bowl with one bottom: every start ends at least squares (at
    0.5, near the balanced rate, in 30 epochs)."""
    history, _ = train_on(*default_data, 0.5, 30, start=start)
    final = (history[-1].w, history[-1].b)
    np.testing.assert_allclose(final, least_squares(*default_data), atol=1e-4)


def test_the_mission_true_line_is_three_and_two(default_run):
    """The data comes from W=3, b=2, and the defaults learn them within 0.1."""
    assert (main.TRUE_W, main.TRUE_B) == (3.0, 2.0)
    x, y = main.make_data(100, main.TRUE_W, main.TRUE_B, 0.0, seed=0)
    np.testing.assert_allclose(y, 3.0 * x + 2.0, rtol=1e-6)
    final = default_run[0][-1]
    assert abs(final.w - 3.0) < 0.1 and abs(final.b - 2.0) < 0.1
