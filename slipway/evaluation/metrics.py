"""Classification metrics from labels and predicted probabilities, in plain numpy.

Why not Keras metrics or scikit-learn: the evaluate step already holds the softmax outputs, the
gate needs exactly these numbers in a JSON-able form, and numpy keeps this module importable in
the Airflow image (no TensorFlow, no scikit-learn there). The unit tests check every number
against ``sklearn.metrics``.

Conventions: the confusion matrix has true classes in rows and predicted classes in columns;
precision of a class that is never predicted is 0 (scikit-learn's ``zero_division=0``); recall of
a class with no test examples is undefined and reported as ``None`` (the gate ignores it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ECE_BINS = 15
# Probabilities are clipped before the log so that one confident mistake gives a large, finite loss.
_LOG_EPS = 1e-15


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin mean confidence, accuracy and count over equal-width confidence bins (for plots)."""

    edges: np.ndarray  # (bins + 1,)
    confidence: np.ndarray  # (bins,) mean max-probability in the bin; NaN when empty
    accuracy: np.ndarray  # (bins,) share of correct predictions in the bin; NaN when empty
    count: np.ndarray  # (bins,) examples in the bin


@dataclass(frozen=True)
class ClassificationMetrics:
    """Everything the gate and the report need about one model on one test set."""

    accuracy: float
    log_loss: float
    ece: float
    precision: np.ndarray  # (k,)
    recall: np.ndarray  # (k,) NaN for a class without test examples
    f1: np.ndarray  # (k,)
    support: np.ndarray  # (k,) int
    confusion: np.ndarray  # (k, k) int, rows = true class, columns = predicted class
    predictions: np.ndarray  # (n,) int, argmax class
    confidence: np.ndarray  # (n,) max probability
    correct: np.ndarray  # (n,) bool, per-example correctness (the paired tests use it)
    reliability: ReliabilityBins

    @property
    def num_classes(self) -> int:
        return len(self.support)

    def per_class(self, class_names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """One JSON-able row per class: ``{class, name, precision, recall, f1, support}``."""
        names = _class_names(class_names, self.num_classes)
        return [
            {
                "class": k,
                "name": names[k],
                "precision": float(self.precision[k]),
                "recall": None if np.isnan(self.recall[k]) else float(self.recall[k]),
                "f1": float(self.f1[k]),
                "support": int(self.support[k]),
            }
            for k in range(self.num_classes)
        ]

    def summary(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        """The small JSON form stored in ``result.json`` (no per-example vectors)."""
        return {
            "accuracy": self.accuracy,
            "log_loss": self.log_loss,
            "ece": self.ece,
            "ece_bins": len(self.reliability.count),
            "per_class": self.per_class(class_names),
            "confusion_matrix": self.confusion.tolist(),
            "test_rows": len(self.correct),
        }


def classification_metrics(
    y_true: np.ndarray,
    probabilities: np.ndarray,
    num_classes: int | None = None,
    ece_bins: int = ECE_BINS,
) -> ClassificationMetrics:
    """Score softmax outputs ``probabilities`` (n, k) against integer labels ``y_true`` (n,)."""
    y = np.asarray(y_true).astype(np.int64).reshape(-1)
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] != len(y):
        raise ValueError(f"probabilities must have shape (n={len(y)}, classes), got {probs.shape}")
    if len(y) == 0:
        raise ValueError("cannot score a model on an empty test set")
    k = num_classes if num_classes is not None else probs.shape[1]
    if probs.shape[1] != k:
        raise ValueError(f"model outputs {probs.shape[1]} classes but the data has {k}")
    if y.min() < 0 or y.max() >= k:
        raise ValueError(f"labels must lie in [0, {k}), found {y.min()}..{y.max()}")

    predictions = probs.argmax(axis=1)
    confidence = probs.max(axis=1)
    correct = predictions == y
    confusion = np.bincount(y * k + predictions, minlength=k * k).reshape(k, k)
    true_positive = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    precision = _safe_divide(true_positive, predicted, empty=0.0)
    recall = _safe_divide(true_positive, support, empty=np.nan)
    recall_for_f1 = np.nan_to_num(recall, nan=0.0)
    f1 = _safe_divide(2 * precision * recall_for_f1, precision + recall_for_f1, empty=0.0)
    reliability = reliability_bins(confidence, correct, ece_bins)

    return ClassificationMetrics(
        accuracy=float(correct.mean()),
        log_loss=log_loss(y, probs),
        ece=expected_calibration_error(reliability),
        precision=precision,
        recall=recall,
        f1=f1,
        support=support,
        confusion=confusion,
        predictions=predictions,
        confidence=confidence,
        correct=correct,
        reliability=reliability,
    )


def log_loss(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean negative log probability of the true class (cross-entropy, natural log)."""
    probs = np.asarray(probabilities, dtype=np.float64)
    # Renormalise as scikit-learn does: float32 softmax rows sum to 1 only up to rounding.
    probs = np.clip(probs, _LOG_EPS, 1.0)
    probs = probs / probs.sum(axis=1, keepdims=True)
    picked = probs[np.arange(len(y_true)), np.asarray(y_true, dtype=np.int64)]
    return float(-np.log(picked).mean())


def reliability_bins(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> ReliabilityBins:
    """Group predictions into ``bins`` equal-width confidence bins ``(lo, hi]`` (0 goes in the first)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=confidence, minlength=bins) / count
        mean_acc = np.bincount(index, weights=correct, minlength=bins) / count
    return ReliabilityBins(edges=edges, confidence=mean_conf, accuracy=mean_acc, count=count)


def expected_calibration_error(bins: ReliabilityBins) -> float:
    """ECE (Guo et al. 2017): the count-weighted mean gap between confidence and accuracy."""
    filled = bins.count > 0
    weights = bins.count[filled] / bins.count.sum()
    return float(np.sum(weights * np.abs(bins.accuracy[filled] - bins.confidence[filled])))


def most_confused_pairs(confusion: np.ndarray, top: int = 6) -> list[tuple[int, int, int]]:
    """The ``top`` off-diagonal cells ``(true, predicted, count)`` with the most mistakes."""
    off = np.array(confusion, dtype=np.int64, copy=True)
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")
    pairs = []
    for flat in order[:top]:
        true, pred = np.unravel_index(flat, off.shape)
        if off[true, pred] == 0:
            break
        pairs.append((int(true), int(pred), int(off[true, pred])))
    return pairs


def _class_names(class_names: Sequence[str] | None, k: int) -> list[str]:
    return list(class_names) if class_names is not None else [str(i) for i in range(k)]


def _safe_divide(num: np.ndarray, den: np.ndarray, *, empty: float) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(num.shape, empty, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out
