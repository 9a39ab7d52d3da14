"""Build a Keras classifier from the ``training.layers`` list of the pipeline config.

The config lists the hidden layers; the builder adds the input and the softmax output sized from
``data.num_classes``, so the same code builds the reference MLP, a small CNN, or anything else
made of the supported layer kinds. Adding a layer kind = one entry in ``_LAYER_BUILDERS`` plus
its config class in ``slipway/config.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from slipway.config import (
    Conv2DLayer,
    DenseLayer,
    DropoutLayer,
    FlattenLayer,
    MaxPool2DLayer,
    OptimizerConfig,
    TrainingConfig,
)

_LAYER_BUILDERS: dict[type, Callable[[Any], keras.layers.Layer]] = {
    DenseLayer: lambda c: keras.layers.Dense(c.units, activation=c.activation),
    DropoutLayer: lambda c: keras.layers.Dropout(c.rate),
    FlattenLayer: lambda c: keras.layers.Flatten(),
    Conv2DLayer: lambda c: keras.layers.Conv2D(
        c.filters, c.kernel_size, activation=c.activation, padding=c.padding
    ),
    MaxPool2DLayer: lambda c: keras.layers.MaxPooling2D(c.pool_size),
}

_OPTIMIZERS: dict[str, Callable[[float], keras.optimizers.Optimizer]] = {
    "adam": lambda lr: keras.optimizers.Adam(learning_rate=lr),
    "adamw": lambda lr: keras.optimizers.AdamW(learning_rate=lr),
    "sgd": lambda lr: keras.optimizers.SGD(learning_rate=lr),
    "rmsprop": lambda lr: keras.optimizers.RMSprop(learning_rate=lr),
}


def make_optimizer(config: OptimizerConfig) -> keras.optimizers.Optimizer:
    return _OPTIMIZERS[config.name](config.learning_rate)


def build_model(
    training: TrainingConfig,
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    policy: str = "float32",
    jit_compile: bool | str = "auto",
    steps_per_execution: int = 1,
) -> keras.Model:
    """A compiled classifier: Input -> configured layers -> Dense(num_classes, softmax).

    ``policy`` is the Keras dtype policy of the hidden layers (``mixed_float16`` on a GPU); the
    output layer always computes in float32 so the softmax and the loss stay stable.
    """
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = _build(training, input_shape, num_classes)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    model.compile(
        optimizer=make_optimizer(training.optimizer),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model


def _build(training: TrainingConfig, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    inputs = keras.Input(shape=tuple(input_shape), name="inputs")
    x = inputs
    if any(isinstance(layer, Conv2DLayer) for layer in training.layers) and len(input_shape) == 2:
        x = keras.layers.Reshape((*input_shape, 1))(x)  # grayscale images need a channel axis
    for layer in training.layers:
        x = _LAYER_BUILDERS[type(layer)](layer)(x)
    if len(x.shape) > 2:
        x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="classifier")
