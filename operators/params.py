"""Map the DAG's Params form (UI / REST trigger) to pipeline config overrides.

A value left empty in the form means "use the pipeline's configured value".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slipway.config import PipelineConfig

# Param name -> path in the pipeline config.
PARAM_PATHS: dict[str, tuple[str, ...]] = {
    "epochs": ("training", "epochs"),
    "batch_size": ("training", "batch_size"),
    "learning_rate": ("training", "optimizer", "learning_rate"),
}


def overrides_from_params(params: Mapping[str, Any]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for name, path in PARAM_PATHS.items():
        value = params.get(name)
        if value is None or value == "":
            continue
        node = overrides
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return overrides


def param_defaults(config: PipelineConfig) -> dict[str, Any]:
    """The form's defaults: the pipeline's own settings, so an untouched form changes nothing."""
    return {
        "epochs": config.training.epochs,
        "batch_size": config.training.batch_size,
        "learning_rate": config.training.optimizer.learning_rate,
    }
