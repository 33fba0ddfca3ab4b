"""The bridge to Keras: fit() with the same batches, in order, is the hand loop."""

import re
import warnings

import numpy as np
import pytest
from test_options import run_main, summary, table

import main

keras, tf = main.keras, main.tf


class WeightsPerEpoch(keras.callbacks.Callback):
    """Records the model's (W, b) and fit()'s logged loss at each epoch's end."""

    def __init__(self):
        super().__init__()
        self.rows = []

    def on_epoch_end(self, epoch, logs=None):
        w, b = float(self.model.w.numpy()), float(self.model.b.numpy())
        self.rows.append((w, b, logs["loss"]))


@pytest.mark.parametrize(
    "size, batch_size, epochs",
    [(200, 200, 3), (200, 32, 2)],
)
def test_fit_with_the_same_batches_in_order_is_the_hand_loop(
    default_data, train_on, size, batch_size, epochs
):
    """Each epoch of fit(shuffle=False) ends where the same epoch of train() does
    (a smaller last batch included), and the loss fit() logs is train()'s mean of
    that epoch's batch losses, each from before its update: with one batch, the
    loss at the W and b an epoch back (test_lessons.py checks that of train())."""
    x, y = default_data[0][:size], default_data[1][:size]
    hand, _ = train_on(x, y, main.LEARNING_RATE, epochs, batch_size=batch_size)
    record = WeightsPerEpoch()
    final = main.fit_with_keras(
        x, y, main.LEARNING_RATE, epochs, batch_size, main.INITIAL, callbacks=[record]
    )
    expected = [(state.w, state.b, state.batch_loss) for state in hand[1:]]
    np.testing.assert_allclose(record.rows, expected, rtol=1e-5, atol=1e-5)
    assert final == record.rows[-1][:2]


def test_shuffling_the_batches_changes_the_result(default_data, train_on):
    """fit()'s default order is shuffled each epoch: other W and b than the same
    batches in order (which the test above shows is train())."""
    x, y = default_data[0][:64], default_data[1][:64]
    history, _ = train_on(x, y, 0.1, 1, batch_size=8)
    keras.utils.set_random_seed(0)
    shuffled = main.fit_with_keras(x, y, 0.1, 1, 8, main.INITIAL, shuffle=True)
    in_order = (history[-1].w, history[-1].b)
    assert max(abs(a - b) for a, b in zip(in_order, shuffled)) > 1e-3


def test_plain_tf_variables_in_a_keras_model_are_not_trained(default_data):
    """Keras 3 does not track them: no trainable weights, W unchanged, a warning."""

    class RawVariables(keras.Model):
        def __init__(self):
            super().__init__()
            self.w, self.b = tf.Variable(5.0), tf.Variable(0.0)

        def call(self, x):
            return x * self.w + self.b

    model = RawVariables()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x, y = default_data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
    assert model.trainable_weights == []
    assert float(model.w.numpy()) == 5.0 and float(model.b.numpy()) == 0.0
    assert any("does not have any trainable weights" in str(w.message) for w in caught)
    assert len(main.KerasLine(5.0, 0.0).trainable_weights) == 2  # add_weight: both


def test_sgd_apply_gradients_is_the_hand_written_update(default_data):
    """One optimizer step, at SGD's default momentum of 0, moves W and b exactly
    as train_step's assign_sub does."""
    x, y = (tf.constant(a) for a in default_data)
    by_hand, by_keras = main.LinearModel(5.0, 0.0), main.LinearModel(5.0, 0.0)
    main.train_step(by_hand, x, y, 0.1)
    with tf.GradientTape() as tape:
        loss = main.mean_squared_error(y, by_keras(x))
    variables = [by_keras.w, by_keras.b]
    gradients = tape.gradient(loss, variables)
    sgd = keras.optimizers.SGD(0.1)
    assert sgd.momentum == 0
    sgd.apply_gradients(zip(gradients, variables))
    assert by_keras.w.numpy() == by_hand.w.numpy()
    assert by_keras.b.numpy() == by_hand.b.numpy()


def test_keras_option_prints_fit_tables_rows_from_its_callback(capsys):
    """--keras: fit()'s table (from ReportEachEpoch) has the hand loop's rows at
    the same epochs, its own logged loss beside them, and a row that agrees."""
    argv = ["--keras", "--epochs", "4", "--learning-rate", "0.5", "--batch-size", "70"]
    status, out, _ = run_main(capsys, *argv, "--num-examples", "300", "--seed", "3")
    hand_part, fit_part = out.split("The same training with Keras")
    assert status == 0
    assert table(hand_part) == table(fit_part) and len(table(fit_part)) == 5
    assert "batch mean" in hand_part and "fit() loss" in fit_part
    assert list(summary(out)) == ["learned", "least-squares", "true", "keras fit()"]
    np.testing.assert_allclose(summary(out)["keras fit()"], summary(out)["learned"])
    assert "keras fit() agrees with the hand loop" in out
    fit_loss_rows = re.findall(
        r"^ +[1-4](?: +-?\d+\.\d{5}){4}$", fit_part, re.MULTILINE
    )
    assert len(fit_loss_rows) == 4
    assert re.search(r"fit\(\) took \d+\.\d+ s", out)


def test_without_the_keras_option_fit_never_runs(capsys, monkeypatch):
    def no_fit(*args, **kwargs):
        raise AssertionError("fit_with_keras ran without --keras")

    monkeypatch.setattr(main, "fit_with_keras", no_fit)
    status, out, _ = run_main(capsys, "--epochs", "2")
    assert status == 0 and "keras" not in out
