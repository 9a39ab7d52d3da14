"""Classification metrics checked against scikit-learn on random and hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from slipway.evaluation.metrics import (
    classification_metrics,
    log_loss,
    most_confused_pairs,
    reliability_bins,
)


def _random_case(n: int = 500, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[y]  # better than chance, not perfect
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs.astype(np.float32)


def test_matches_sklearn() -> None:
    y, probs = _random_case()
    m = classification_metrics(y, probs)
    pred = probs.argmax(axis=1)
    assert m.accuracy == pytest.approx(skm.accuracy_score(y, pred))
    assert m.log_loss == pytest.approx(skm.log_loss(y, probs, labels=range(4)), rel=1e-6)
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=range(4), zero_division=0)
    np.testing.assert_allclose(m.precision, p)
    np.testing.assert_allclose(m.recall, r)
    np.testing.assert_allclose(m.f1, f)
    np.testing.assert_array_equal(m.support, s)
    np.testing.assert_array_equal(m.confusion, skm.confusion_matrix(y, pred, labels=range(4)))
    np.testing.assert_array_equal(m.correct, pred == y)


def test_class_never_predicted_and_class_without_examples() -> None:
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.7, 0.3, 0.0], [0.2, 0.8, 0.0]])
    m = classification_metrics(y, probs)
    assert m.precision[2] == 0.0 and m.f1[2] == 0.0
    assert np.isnan(m.recall[2])  # no test examples of class 2: undefined, not zero
    row = m.per_class(["a", "b", "c"])[2]
    assert row == {"class": 2, "name": "c", "precision": 0.0, "recall": None, "f1": 0.0, "support": 0}
    assert m.recall[1] == pytest.approx(0.5)
    assert np.isfinite(m.log_loss)  # probability 0 of nothing true: clipped, finite


def test_expected_calibration_error_by_hand() -> None:
    # Two bins used: confidence 0.95 (2 examples, 1 right) and 0.55 (2 examples, both right).
    confidence = np.array([0.95, 0.95, 0.55, 0.55])
    correct = np.array([True, False, True, True])
    bins = reliability_bins(confidence, correct, 15)
    y = np.array([0, 1, 0, 1])
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.45, 0.55]])
    m = classification_metrics(y, probs)
    expected = 0.5 * abs(0.5 - 0.95) + 0.5 * abs(1.0 - 0.55)
    assert m.ece == pytest.approx(expected)
    assert bins.count.sum() == 4 and (bins.count > 0).sum() == 2


def test_perfectly_calibrated_bins_have_zero_gap() -> None:
    confidence = np.full(10, 1.0)
    bins = reliability_bins(confidence, np.ones(10, bool), 15)
    assert bins.count[-1] == 10  # confidence 1.0 falls in the last bin, not past it


def test_log_loss_renormalises_like_sklearn() -> None:
    y = np.array([0, 1])
    probs = np.array([[0.6, 0.3], [0.2, 0.7]], dtype=np.float32)  # rows do not sum to 1
    assert log_loss(y, probs) == pytest.approx(-np.mean(np.log([0.6 / 0.9, 0.7 / 0.9])))


def test_most_confused_pairs() -> None:
    confusion = np.array([[5, 3, 0], [1, 7, 4], [0, 0, 9]])
    assert most_confused_pairs(confusion, 2) == [(1, 2, 4), (0, 1, 3)]
    assert most_confused_pairs(np.diag([3, 3]), 5) == []


def test_summary_is_json_sized() -> None:
    y, probs = _random_case(50, 3)
    summary = classification_metrics(y, probs).summary(["x", "y", "z"])
    assert set(summary) == {
        "accuracy",
        "log_loss",
        "ece",
        "ece_bins",
        "per_class",
        "confusion_matrix",
        "test_rows",
    }
    assert summary["test_rows"] == 50 and summary["ece_bins"] == 15


@pytest.mark.parametrize(
    ("y", "probs", "message"),
    [
        (np.array([0, 1]), np.ones((3, 2)) / 2, "shape"),
        (np.array([0, 5]), np.ones((2, 2)) / 2, "labels"),
        (np.array([], dtype=int), np.ones((0, 2)), "empty"),
    ],
)
def test_bad_inputs_are_named(y: np.ndarray, probs: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classification_metrics(y, probs)
