"""Champion vs candidate on one test set: score both, compare them pairwise, summarise.

Kept apart from the step (``slipway/steps/evaluate.py``), which only moves files between the store
and a temporary folder, so this logic runs on local folders in tests and benchmarks.

The champion is always re-scored here on the same examples as the candidate: comparing with an
accuracy recorded months ago on other data would mistake a data shift for a model change, and
would make the paired test impossible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slipway.errors import BadInputError
from slipway.evaluation.metrics import ClassificationMetrics, classification_metrics
from slipway.evaluation.scoring import ScoredModel, load_keras_model, score_model
from slipway.evaluation.statistics import (
    BootstrapInterval,
    McNemarResult,
    bootstrap_accuracy_difference,
    mcnemar_exact,
)

# result.json keeps the confusion matrix inline only up to this many classes (k^2 numbers).
INLINE_CONFUSION_MAX_CLASSES = 50


@dataclass(frozen=True)
class ScoredVariant:
    """One model (candidate or champion) with its outputs and metrics on the test set."""

    variant: str  # "candidate" | "champion"
    version: int | None
    model_dir: Path
    model: Any  # the loaded keras.Model (the report explains its predictions)
    scored: ScoredModel
    metrics: ClassificationMetrics

    def summary(self, class_names: list[str] | None) -> dict[str, Any]:
        out = self.metrics.summary(class_names)
        if self.metrics.num_classes > INLINE_CONFUSION_MAX_CLASSES:
            out["confusion_matrix"] = None  # in the predictions npz beside result.json
        out["latency"] = self.scored.latency.to_dict()
        out["size"] = self.scored.size.to_dict() if self.scored.size else None
        out["predict_seconds"] = self.scored.predict_seconds
        out["version"] = self.version
        return out


@dataclass(frozen=True)
class Comparison:
    candidate: ScoredVariant
    champion: ScoredVariant | None
    mcnemar: McNemarResult | None
    bootstrap: BootstrapInterval | None

    def summary(self) -> dict[str, Any] | None:
        """``comparison`` in result.json; None for the first model (nothing to compare with)."""
        if self.champion is None or self.mcnemar is None or self.bootstrap is None:
            return None
        return {
            "accuracy_delta": self.candidate.metrics.accuracy - self.champion.metrics.accuracy,
            "mcnemar_p_value": self.mcnemar.p_value,
            **{k: v for k, v in self.mcnemar.to_dict().items() if k != "p_value"},
            "bootstrap_ci": self.bootstrap.to_dict(),
        }


def score_variant(
    variant: str,
    model_dir: str | Path,
    x: np.ndarray,
    y: np.ndarray,
    *,
    num_classes: int,
    version: int | None = None,
    latency_batch_size: int = 32,
) -> ScoredVariant:
    """Load ``model_dir/model.keras`` and score it on ``(x, y)``; a contract mismatch is bad input."""
    model = load_keras_model(model_dir)
    name = variant if version is None else f"{variant} (version {version})"
    model_shape = tuple(model.input_shape)[1:]
    data_shape = x.shape[1:]
    if len(model_shape) != len(data_shape) or any(
        m is not None and m != d for m, d in zip(model_shape, data_shape, strict=True)
    ):
        raise BadInputError(
            f"{name} expects inputs of shape {model_shape} but the test set has {data_shape}:"
            " the data contract changed, so it cannot be scored on this test set"
        )
    scored = score_model(model, x, model_dir=model_dir, latency_batch_size=latency_batch_size)
    if scored.probabilities.shape[1] != num_classes:
        raise BadInputError(
            f"{name} outputs {scored.probabilities.shape[1]} classes but the data has {num_classes}"
        )
    metrics = classification_metrics(y, scored.probabilities, num_classes)
    return ScoredVariant(variant, version, Path(model_dir), model, scored, metrics)


def compare(
    candidate: ScoredVariant,
    champion: ScoredVariant | None,
    *,
    bootstrap_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Paired statistics of the candidate against the champion (None for the first model)."""
    if champion is None:
        return Comparison(candidate, None, None, None)
    cand, champ = candidate.metrics.correct, champion.metrics.correct
    return Comparison(
        candidate,
        champion,
        mcnemar_exact(cand, champ),
        bootstrap_accuracy_difference(
            cand, champ, samples=bootstrap_samples, confidence=confidence, seed=seed
        ),
    )


def rescore(variant: ScoredVariant, x: np.ndarray, y: np.ndarray) -> ScoredVariant:
    """The same loaded model on other examples (the golden set): new probabilities and metrics,
    the latency and size measured on the test split kept."""
    from dataclasses import replace

    from slipway.evaluation.scoring import predict_probabilities

    model_shape = tuple(variant.model.input_shape)[1:]
    if len(model_shape) != len(x.shape[1:]) or any(
        m is not None and m != d for m, d in zip(model_shape, x.shape[1:], strict=False)
    ):
        raise BadInputError(
            f"the {variant.variant} expects inputs of shape {model_shape} but the golden set has"
            f" {x.shape[1:]}: check golden.source"
        )
    probabilities = predict_probabilities(variant.model, x)
    metrics = classification_metrics(y, probabilities, variant.metrics.num_classes)
    return replace(variant, scored=replace(variant.scored, probabilities=probabilities), metrics=metrics)
