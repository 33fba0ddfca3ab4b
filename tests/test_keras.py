"""The bridge to Keras: fit() with one full batch, in order, is the hand loop."""

import re
import warnings

import numpy as np
from test_options import run_main, summary

import main

keras, tf = main.keras, main.tf


class WeightsPerEpoch(keras.callbacks.Callback):
    """Records the model's (W, b) at the end of each epoch of fit()."""

    def __init__(self):
        super().__init__()
        self.rows = []

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append((float(self.model.w.numpy()), float(self.model.b.numpy())))


def test_fit_with_one_full_batch_in_order_is_the_hand_loop_epoch_by_epoch(
    default_data, default_run
):
    """Each epoch of fit() ends where the same epoch of train() does."""
    epochs, record = 6, WeightsPerEpoch()
    final = main.fit_with_keras(
        *default_data, main.LEARNING_RATE, epochs, 5.0, 0.0, callbacks=[record]
    )
    hand = [(state.w, state.b) for state in default_run[0][1 : epochs + 1]]
    np.testing.assert_allclose(record.rows, hand, atol=1e-6)
    assert final == record.rows[-1]


def test_fit_with_its_default_batches_of_32_is_another_algorithm(
    default_data, default_run
):
    """32 mini-batch updates per epoch: after 1 epoch, other W and b."""
    hand = default_run[0][1]
    keras_w, keras_b = main.fit_with_keras(
        *default_data, main.LEARNING_RATE, 1, 5.0, 0.0, batch_size=32
    )
    assert abs(keras_w - hand.w) > 0.1 and abs(keras_b - hand.b) > 0.1


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
    """One optimizer step moves W and b exactly as train_step's assign_sub does."""
    x, y = (tf.constant(a) for a in default_data)
    by_hand, by_keras = main.LinearModel(5.0, 0.0), main.LinearModel(5.0, 0.0)
    main.train_step(by_hand, x, y, 0.1)
    with tf.GradientTape() as tape:
        loss = main.mean_squared_error(y, by_keras(x))
    variables = [by_keras.w, by_keras.b]
    gradients = tape.gradient(loss, variables)
    keras.optimizers.SGD(0.1).apply_gradients(zip(gradients, variables))
    assert by_keras.w.numpy() == by_hand.w.numpy()
    assert by_keras.b.numpy() == by_hand.b.numpy()


def test_keras_option_adds_a_row_that_agrees_with_the_hand_loop(capsys):
    """--keras with the other options changed too: fit() still agrees."""
    argv = ["--epochs", "4", "--learning-rate", "0.5", "--num-examples", "300"]
    status, out, _ = run_main(capsys, "--keras", *argv, "--seed", "3", "--noise", "2")
    rows = summary(out)
    assert status == 0
    assert list(rows) == ["learned", "least-squares", "true", "keras fit()"]
    np.testing.assert_allclose(rows["keras fit()"], rows["learned"], atol=1e-5)
    assert "keras fit() agrees with the hand loop" in out
    assert re.search(r"fit\(\) took \d+\.\d+ s, \d+\.\d ms per epoch", out)


def test_without_the_keras_option_fit_never_runs(capsys, monkeypatch):
    def no_fit(*args, **kwargs):
        raise AssertionError("fit_with_keras ran without --keras")

    monkeypatch.setattr(main, "fit_with_keras", no_fit)
    status, out, _ = run_main(capsys, "--epochs", "2")
    assert status == 0 and "keras" not in out
