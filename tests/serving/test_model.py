"""Safe-mode loading and the compiled forward pass answer exactly what the SavedModel answers."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from slipway.config import Conv2DLayer, DenseLayer, DropoutLayer, FlattenLayer, MaxPool2DLayer, TrainingConfig
from slipway.serving.artifact import ModelRefused
from slipway.serving.model import load
from slipway.training.models import build_model
from slipway.training.trainer import export_model

MLP = TrainingConfig()  # the reference Flatten / Dense 512 relu / Dropout 0.2 (+ softmax output)
CNN = TrainingConfig(
    layers=[
        Conv2DLayer(type="conv2d", filters=4, kernel_size=3, activation="relu"),
        MaxPool2DLayer(type="maxpool2d"),
        FlattenLayer(type="flatten"),
        DenseLayer(type="dense", units=16, activation="tanh"),
        DropoutLayer(type="dropout", rate=0.5),
    ]
)


def _export(tmp_path: Path, training: TrainingConfig) -> Path:
    keras.utils.set_random_seed(7)
    model = build_model(training, (8, 8), 10)
    # larger weights than the initializer's, so the softmax is far from uniform
    model.set_weights([w * 3 for w in model.get_weights()])
    return export_model(model, tmp_path / "model", {"test": True})


def _saved_model_answers(path: Path, x: np.ndarray) -> np.ndarray:
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    return signature(inputs=tf.constant(x))["output_0"].numpy()


@pytest.mark.parametrize(("training", "kind"), [(MLP, "numpy"), (CNN, "tf.function")], ids=["mlp", "cnn"])
def test_forward_pass_matches_the_saved_model(tmp_path: Path, training: TrainingConfig, kind: str) -> None:
    path = _export(tmp_path, training)
    loaded = load(path)
    assert loaded.forward_kind == kind
    assert (loaded.input.name, loaded.input.shape, loaded.output_name) == ("inputs", (8, 8), "output_0")
    x = np.random.default_rng(0).uniform(0, 1, size=(257, 8, 8)).astype(np.float32)
    expected = _saved_model_answers(path, x)
    for batch in (x[:1], x[:64], x):  # the sizes micro-batching produces
        got = loaded.forward(batch)
        assert got.dtype == np.float32 and got.shape == (len(batch), 10)
        np.testing.assert_array_equal(got.argmax(axis=1), expected[: len(batch)].argmax(axis=1))
        # float32 sums in another order: equal to the last bits of float32
        np.testing.assert_allclose(got, expected[: len(batch)], rtol=1e-5, atol=1e-6)


def test_code_in_a_model_file_is_refused(tmp_path: Path) -> None:
    inputs = keras.Input(shape=(8, 8), name="inputs")
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Lambda(lambda t: t * 2)(x)  # arbitrary Python: safe mode must not load it
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    path = export_model(keras.Model(inputs, outputs), tmp_path / "model", {})
    with pytest.raises(ModelRefused, match="safe mode"):
        load(path)
