"""Bad data that looks normal, made here from real Fashion-MNIST, is rejected by name.

Every damaged partition keeps per-image brightness and contrast about the same, so the global
drift checks alone let most of them through. The structural checks (per-pixel mean / std maps,
row / column profiles, per class) and the champion witness must catch each, with a reason naming
the check. The thresholds are the defaults calibrated on clean data (``bench/README.md``); none is
set per case. And random clean partitions must pass.
"""

from __future__ import annotations

import numpy as np
import pytest

from slipway.config import PipelineConfig, parse_config
from slipway.data.dataset import Split
from slipway.data.profile import profile_split
from slipway.validation.validator import validate_split
from slipway.validation.witness import output_profile, witness_statistics
from tests import damage
from tests.data_fixtures import FASHION_DIR, fashion  # noqa: F401

ROWS = 5000
CLEAN_PARTITIONS = 20
STRUCTURE = ("drift.structure_", "drift.class_")


def config() -> PipelineConfig:
    names = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]
    data = {"source": {"kind": "idx", "uri": str(FASHION_DIR), "scale": 255}, "input_shape": [28, 28]}
    return parse_config(
        {
            "name": "fashion",
            "model_name": "fashion",
            "store_url": "file:///tmp/unused",
            "data": {**data, "num_classes": 10, "class_names": names},
        }
    )


@pytest.fixture(scope="module")
def reference(fashion) -> dict:  # noqa: F811
    train, _ = fashion
    return {"snapshot_key": "fashion-train", "profile": profile_split(train)}


@pytest.fixture(scope="module")
def partition(fashion) -> Split:  # noqa: F811
    """5,000 test images: never part of the reference."""
    _, test = fashion
    return Split(test.x[:ROWS], test.y[:ROWS])


class NearestCentroid:
    """A small stand-in champion without TensorFlow: softmax over negative squared distances to
    the class means (the validate step runs the real Keras champion; see the dag.test())."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        flat = x.reshape(len(x), -1).astype(np.float64)
        self.centroids = np.stack([flat[y == c].mean(axis=0) for c in range(10)])

    def predict(self, x: np.ndarray) -> np.ndarray:
        flat = x.reshape(len(x), -1).astype(np.float64)
        d2 = (flat**2).sum(1)[:, None] - 2 * flat @ self.centroids.T + (self.centroids**2).sum(1)[None, :]
        logits = -(d2 - d2.min(axis=1, keepdims=True)) / 4.0
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def champion(fashion):  # noqa: F811
    """The champion and its registration figures on held-out images."""
    train, test = fashion
    model = NearestCentroid(train.x[:20000], train.y[:20000])
    held_out = Split(test.x[ROWS:], test.y[ROWS:])
    return model, output_profile(model.predict(held_out.x), held_out.y)


def witness(champion, split: Split, cfg) -> list:
    model, registered = champion
    probabilities = model.predict(split.x)
    current = {**output_profile(probabilities, split.y), "_confidence_values": probabilities.max(axis=1)}
    return witness_statistics(current, registered, registered["accuracy"], 1, cfg)


SPATIAL = {
    "shift 1 px right": lambda p: damage.shifted(p, 0, 1),
    "shift 1 px down": lambda p: damage.shifted(p, 1, 0),
    "shift 2 px right": lambda p: damage.shifted(p, 0, 2),
    "shift 3 px up-left": lambda p: damage.shifted(p, -3, -3),
    "rotate 10 degrees": lambda p: damage.rotated(p, 10),
    "rotate 90 degrees": lambda p: damage.rotated(p, 90),
    "rotate 180 degrees": lambda p: damage.rotated(p, 180),
    "flip left-right": lambda p: damage.flipped(p, "horizontal"),
    "flip upside down": lambda p: damage.flipped(p, "vertical"),
}
DOMAIN = {
    "10% handwritten digits": lambda p: damage.domain_swapped(p, 0.1),
    "30% handwritten digits": lambda p: damage.domain_swapped(p, 0.3, seed=1),
}
LABELS = {
    "classes permuted": lambda p: damage.labels_permuted(p),
    "2 class pairs swapped": lambda p: damage.labels_swapped(p, [(0, 6), (2, 4)]),
    "1 class pair swapped": lambda p: damage.labels_swapped(p, [(7, 9)]),
    "10% random labels": lambda p: damage.labels_noisy(p, 0.1),
    "40% random labels": lambda p: damage.labels_noisy(p, 0.4, seed=2),
}


def rejected(report) -> dict[str, str]:
    assert not report.success
    return {o.check.id: o.message for o in report.failed}


@pytest.mark.parametrize("case", list(SPATIAL) + list(DOMAIN))
def test_spatial_and_domain_damage_is_rejected_by_structure(case, partition, reference) -> None:
    cfg = config()
    damaged = {**SPATIAL, **DOMAIN}[case](partition)
    report = validate_split(damaged, cfg.data, cfg.validation, reference=reference)
    failed = rejected(report)
    structural = [check for check in failed if check.startswith(STRUCTURE)]
    assert structural, f"{case}: rejected only by {sorted(failed)}"
    for check in structural:
        assert failed[check].startswith(check) and "observed" in failed[check]


@pytest.mark.parametrize("case", list(LABELS))
def test_label_corruption_is_rejected_by_class_structure_or_witness(
    case, partition, reference, champion
) -> None:
    cfg = config()
    damaged = LABELS[case](partition)
    extra = witness(champion, damaged, cfg.validation)
    report = validate_split(damaged, cfg.data, cfg.validation, reference=reference, extra_statistics=extra)
    failed = rejected(report)
    assert any(check.startswith(("drift.class_", "witness.")) for check in failed), sorted(failed)
    # The images are untouched: no global structure check fires, only the per-class ones.
    assert not any(check.startswith("drift.structure_") for check in failed), sorted(failed)


def test_witness_names_the_champion_and_both_accuracies(partition, reference, champion) -> None:
    cfg = config()
    damaged = damage.labels_permuted(partition)
    report = validate_split(
        damaged,
        cfg.data,
        cfg.validation,
        reference=reference,
        extra_statistics=witness(champion, damaged, cfg.validation),
    )
    message = rejected(report)["witness.accuracy_drop"]
    registered = champion[1]["accuracy"]
    assert (
        f"vs {registered:.4f} at registration: labels or inputs do not match what the model learned"
        in message
    )
    assert message.startswith("witness.accuracy_drop (champion v1 accuracy on this partition")


def test_clean_partitions_pass_with_witness(fashion, reference, champion) -> None:  # noqa: F811
    """20 random clean partitions: every statistic within its threshold (the figures GX checks;
    the first partition also goes through the whole GX suite)."""
    from slipway.data.rowstats import row_stats
    from slipway.data.structure import structure_moments
    from slipway.validation.drift import compare_to_reference
    from slipway.validation.structure import compare_structure

    train, test = fashion
    x, y = np.concatenate([train.x, test.x]), np.concatenate([train.y, test.y])
    cfg = config()
    profile = reference["profile"]
    rng = np.random.default_rng(2026)
    false_alarms = []
    for i in range(CLEAN_PARTITIONS):
        rows = rng.choice(len(y), ROWS, replace=False)
        clean = Split(x[rows], y[rows])
        stats = [
            *compare_to_reference(clean.y, *_mean_std(row_stats(clean.x)), profile, cfg.validation),
            *compare_structure(structure_moments(clean.x, clean.y), profile["structure"], cfg.validation),
            *witness(champion, clean, cfg.validation),
        ]
        assert len(stats) == 16
        false_alarms += [
            f"partition {i}: {s.group}.{s.name} {s.value:.4f} > {s.effective_threshold:.4f}"
            for s in stats
            if not s.passed
        ]
        if i == 0:
            report = validate_split(clean, cfg.data, cfg.validation, reference=reference)
            assert report.success, report.failure_message()
    assert false_alarms == []


def _mean_std(stats):
    return stats.mean, stats.std
