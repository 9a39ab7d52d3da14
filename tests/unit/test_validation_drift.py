"""Drift statistics: values on known shifts, the sampling-noise floor, what gets recorded."""

from __future__ import annotations

import numpy as np
import pytest

from slipway.config import ValidationConfig
from slipway.data.dataset import Split
from slipway.data.profile import profile_split
from slipway.validation.drift import compare_to_reference

CFG = ValidationConfig()


def sample(n: int, seed: int, brightness: float = 0.0, labels: np.ndarray | None = None) -> Split:
    rng = np.random.default_rng(seed)
    x = np.clip(rng.normal(0.3 + brightness, 0.1, (n, 1)) + rng.normal(0, 0.2, (n, 64)), 0, 1)
    y = labels if labels is not None else rng.integers(0, 10, n)
    return Split(x.astype(np.float32), y.astype(np.int64))


@pytest.fixture(scope="module")
def reference() -> dict:
    return profile_split(sample(20_000, seed=0))


def stats(split: Split, reference: dict, cfg: ValidationConfig = CFG) -> dict:
    from slipway.data.rowstats import row_stats

    rs = row_stats(split.x)
    return {s.name: s for s in compare_to_reference(split.y, rs.mean, rs.std, reference, cfg)}


def test_same_distribution_passes_with_values_recorded(reference: dict) -> None:
    found = stats(sample(5000, seed=1), reference)
    assert set(found) == {
        "label_tv",
        "mean_intensity_shift",
        "std_intensity_shift",
        "mean_intensity_ks",
        "std_intensity_ks",
    }
    for stat in found.values():
        assert stat.passed and 0 <= stat.value < stat.effective_threshold
        assert stat.to_dict()["value"] == pytest.approx(stat.value, abs=1e-6)


def test_brightness_shift_is_measured_in_reference_std_units(reference: dict) -> None:
    found = stats(sample(5000, seed=2, brightness=0.05), reference)
    spread = reference["example_mean"]["std"]
    assert found["mean_intensity_shift"].value == pytest.approx(0.05 / spread, rel=0.15)
    assert not found["mean_intensity_shift"].passed and not found["mean_intensity_ks"].passed


def test_label_total_variation(reference: dict) -> None:
    labels = np.zeros(5000, dtype=np.int64)  # every row class 0, reference is uniform over 10
    stat = stats(sample(5000, seed=3, labels=labels), reference)["label_tv"]
    assert stat.value == pytest.approx(0.9, abs=0.01)
    assert "largest change: class 0" in stat.detail and not stat.passed


def test_small_samples_raise_the_threshold_to_the_noise_floor(reference: dict) -> None:
    small, large = stats(sample(150, seed=4), reference), stats(sample(5000, seed=4), reference)
    for name in small:
        assert small[name].noise_floor > large[name].noise_floor
        assert small[name].passed  # sampling noise is not drift
    assert small["label_tv"].effective_threshold > CFG.max_label_drift  # 150 rows over 10 classes
    assert large["label_tv"].effective_threshold == CFG.max_label_drift


def test_noise_floor_can_be_switched_off(reference: dict) -> None:
    strict = ValidationConfig(drift_noise_sigmas=0, max_label_drift=0.0)
    stat = stats(sample(5000, seed=5), reference, strict)["label_tv"]
    assert not stat.passed and stat.effective_threshold < 0.02
