"""The search space: sample a trial's parameters, and turn them into a ``TrainingConfig``.

``suggest`` asks an Optuna trial for every dimension (a fixed value is recorded too, so every
trial has the same parameter names and importances compare like with like). ``training_for``
is pure: the same params always build the same model, which is what lets a retried trial and
the select step rebuild exactly what the sampler chose.
"""

from __future__ import annotations

from typing import Any

from slipway.config import (
    Conv2DLayer,
    DenseLayer,
    DropoutLayer,
    FlattenLayer,
    FloatRange,
    IntRange,
    MaxPool2DLayer,
    OptimizerConfig,
    SearchSpaceConfig,
    TrainingConfig,
)

INT_DIMENSIONS = ("conv_blocks", "conv_filters", "dense_layers", "dense_units", "batch_size", "epochs")
FLOAT_DIMENSIONS = ("dropout", "learning_rate")


def suggest(trial: Any, space: SearchSpaceConfig) -> dict[str, Any]:
    """Sample every dimension of ``space`` with an ``optuna.Trial``; returns plain values."""
    params: dict[str, Any] = {}
    for name in INT_DIMENSIONS:
        dim = getattr(space, name)
        if isinstance(dim, IntRange):
            params[name] = trial.suggest_int(name, dim.low, dim.high, step=dim.step, log=dim.log)
        else:
            params[name] = trial.suggest_categorical(name, dim if isinstance(dim, list) else [dim])
    for name in FLOAT_DIMENSIONS:
        dim = getattr(space, name)
        if isinstance(dim, FloatRange):
            params[name] = trial.suggest_float(name, dim.low, dim.high, log=dim.log)
        else:
            params[name] = trial.suggest_categorical(name, dim if isinstance(dim, list) else [dim])
    optimizers = space.optimizer if isinstance(space.optimizer, list) else [space.optimizer]
    params["optimizer"] = trial.suggest_categorical("optimizer", optimizers)
    return params


def distributions(space: SearchSpaceConfig) -> dict[str, Any]:
    """Optuna distributions of ``space`` (to rebuild stored trials into an in-memory study)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for name in INT_DIMENSIONS:
        dim = getattr(space, name)
        out[name] = (
            IntDistribution(dim.low, dim.high, step=dim.step, log=dim.log)
            if isinstance(dim, IntRange)
            else CategoricalDistribution(dim if isinstance(dim, list) else [dim])
        )
    for name in FLOAT_DIMENSIONS:
        dim = getattr(space, name)
        out[name] = (
            FloatDistribution(dim.low, dim.high, log=dim.log)
            if isinstance(dim, FloatRange)
            else CategoricalDistribution(dim if isinstance(dim, list) else [dim])
        )
    optimizers = space.optimizer if isinstance(space.optimizer, list) else [space.optimizer]
    out["optimizer"] = CategoricalDistribution(optimizers)
    return out


def training_for(params: dict[str, Any], base: TrainingConfig) -> TrainingConfig:
    """The pipeline's training settings with the trial's model and fitting parameters."""
    layers: list[Any] = []
    filters = int(params["conv_filters"])
    for block in range(int(params["conv_blocks"])):
        layers.append(
            Conv2DLayer(
                type="conv2d", filters=filters * 2**block, kernel_size=3, activation="relu", padding="same"
            )
        )
        layers.append(MaxPool2DLayer(type="maxpool2d", pool_size=2))
    layers.append(FlattenLayer(type="flatten"))
    for _ in range(int(params["dense_layers"])):
        layers.append(DenseLayer(type="dense", units=int(params["dense_units"]), activation="relu"))
        if float(params["dropout"]) > 0:
            layers.append(DropoutLayer(type="dropout", rate=float(params["dropout"])))
    optimizer = OptimizerConfig(name=params["optimizer"], learning_rate=float(params["learning_rate"]))
    return TrainingConfig.model_validate(
        {
            **base.model_dump(mode="json"),
            "layers": [layer.model_dump(mode="json") for layer in layers],
            "optimizer": optimizer.model_dump(mode="json"),
            "batch_size": int(params["batch_size"]),
            "epochs": int(params["epochs"]),
        }
    )
