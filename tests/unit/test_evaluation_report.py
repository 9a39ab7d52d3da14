"""The HTML report renders every section from synthetic numbers (no TensorFlow needed)."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from slipway.config import GateConfig
from slipway.evaluation.explain import Attributions
from slipway.evaluation.gate import decide
from slipway.evaluation.metrics import classification_metrics
from slipway.evaluation.report import (
    BLESSING_START,
    ModelView,
    ReportData,
    add_blessing_to_report,
    image_shape,
    render_blessing_html,
    render_report,
)
from slipway.evaluation.scoring import LatencyStats, ModelSize
from slipway.evaluation.statistics import bootstrap_accuracy_difference, mcnemar_exact

SECTIONS = (
    "Gate decision",
    "Champion vs candidate",
    "Confusion matrices",
    "Per-class precision, recall and F1",
    "Calibration",
    "Most confused pairs",
    "What the model looks at (integrated gradients)",
)


def _probs(y: np.ndarray, k: int, skill: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(len(y), k)) + skill * np.eye(k)[y]
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def _data(input_shape: tuple[int, ...], with_champion: bool, explain: bool = True) -> ReportData:
    rng = np.random.default_rng(0)
    k, n = 4, 200
    y = rng.integers(0, k, n)
    x = rng.random((n, *input_shape)).astype(np.float32)
    cand = classification_metrics(y, _probs(y, k, 2.0, 1))
    latency = LatencyStats(32, 1.6, 0.05, 20, 3)
    size = ModelSize(1_234_567, 2_500_000)
    champion = mcnemar = ci = None
    if with_champion:
        champ = classification_metrics(y, _probs(y, k, 2.5, 2))
        champion = ModelView("champion v3", champ, 3, latency, size)
        mcnemar = mcnemar_exact(cand.correct, champ.correct)
        ci = bootstrap_accuracy_difference(cand.correct, champ.correct)
    explained = np.array([0, 5, 9])
    attributions = Attributions(
        maps=rng.normal(size=(3, *input_shape)),
        target=cand.predictions[explained],
        probability=cand.confidence[explained],
        convergence_delta=np.array([1e-4, 2e-4, 1e-3]),
    )
    return ReportData(
        model_name="digits",
        run_id="manual__2026-01-01T00:00:00+00:00",
        snapshot_key="snapshots/abc.npz",
        x_test=x,
        y_test=y,
        candidate=ModelView("candidate", cand, None, latency, size),
        champion=champion,
        mcnemar=mcnemar,
        bootstrap=ci,
        class_names=["zero", "one", "<two>", "three"],
        explained=explained if explain else None,
        attributions=attributions if explain else None,
    )


def _images(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r"src='data:image/png;base64,([^']+)'", html)]


def test_full_report_with_champion_is_self_contained() -> None:
    html = render_report(_data((8, 8), with_champion=True))
    for section in SECTIONS:
        assert f"<h2>{section}</h2>" in html
    images = _images(html)
    assert len(images) == 5  # confusion, per-class, calibration, confused examples, attributions
    assert all(img.startswith(b"\x89PNG") for img in images)
    assert "champion v3" in html and "McNemar" in html and "bootstrap interval" in html
    assert "&lt;two&gt;" in html and "<two>" not in html  # class names are escaped
    assert "PENDING" in html
    assert not re.search(r"(src|href)=['\"](?!data:)", html)  # no external assets


def test_first_model_report_has_no_comparison() -> None:
    html = render_report(_data((8, 8, 1), with_champion=False))
    assert "No champion" in html and "McNemar" not in html
    for section in SECTIONS:
        assert f"<h2>{section}</h2>" in html
    assert len(_images(html)) == 5


def test_non_image_inputs_skip_picture_sections_with_a_note() -> None:
    html = render_report(_data((64,), with_champion=True))
    assert html.count("not images") == 2
    assert len(_images(html)) == 3  # confusion, per-class, calibration


def test_missing_attributions_are_explained() -> None:
    html = render_report(_data((8, 8), with_champion=False, explain=False))
    assert "No attributions were computed" in html


def test_blessing_is_attached_afterwards_and_replaced() -> None:
    data = _data((8, 8), with_champion=True)
    html = render_report(data)
    ev = {
        "candidate": {"accuracy": data.candidate.metrics.accuracy, "per_class": []},
        "champion": {"accuracy": 0.9, "version": 3},
        "comparison": {"accuracy_delta": -0.2, "mcnemar_p_value": 0.001},
    }
    rejected = decide(GateConfig(min_accuracy=0.1), ev)
    once = add_blessing_to_report(html, rejected)
    assert "REJECTED" in once and "PENDING" not in once and "non_regression" in once
    forced = decide(GateConfig(min_accuracy=0.1), ev, force_reason="incident <42>", forced_by="ann")
    twice = add_blessing_to_report(once, forced)
    assert "FORCED" in twice and "REJECTED" not in twice and "incident &lt;42&gt;" in twice
    assert twice.count(BLESSING_START) == 1
    assert render_report(data, forced).count("FORCED") == 1
    assert render_blessing_html(forced) in twice


def test_attaching_to_something_else_fails_clearly() -> None:
    blessing = decide(GateConfig(), {"candidate": {"accuracy": 0.99, "per_class": []}})
    with pytest.raises(ValueError, match="not a Slipway evaluation report"):
        add_blessing_to_report("<html></html>", blessing)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((28, 28), (28, 28)),
        ((28, 28, 1), (28, 28)),
        ((32, 32, 3), (32, 32, 3)),
        ((784,), None),
        ((4, 4, 7), None),
    ],
)
def test_image_shape(shape: tuple[int, ...], expected: tuple[int, ...] | None) -> None:
    assert image_shape(shape) == expected
