"""Drift of a partition against the reference profile, as effect sizes with a noise floor.

Why effect sizes: at 70,000 rows a KS or chi-square p-value flags every harmless wobble, and at
500 rows it misses real shifts. Each statistic here measures *how much* moved:

* ``label_tv`` - total variation distance between label distributions (0 = same, 1 = disjoint);
* ``mean_intensity_shift`` / ``std_intensity_shift`` - how far the average per-example mean
  (brightness) / standard deviation (contrast) moved, in units of the reference's spread of
  that per-example value across examples;
* ``mean_intensity_ks`` / ``std_intensity_ks`` - Kolmogorov-Smirnov distance between the
  distributions of per-example means / stds, the current ECDF evaluated at the reference's 101
  quantiles (so the reference need not keep the data).

Each is held to its configured threshold, raised to a noise floor when the sample is small:
the statistic's expected value under no drift plus ``drift_noise_sigmas`` standard deviations,
from the sizes of both samples (``se = sqrt(1/n + 1/n_ref)``). Both numbers are recorded, so a
statistic that passed is still visible (and exported as a metric) with its margin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from slipway.config import ValidationConfig

# Kolmogorov distribution: mean and standard deviation of sqrt(n) * D under no drift.
_KS_MEAN, _KS_SD = 0.8687, 0.2603
_HALF_NORMAL_MEAN = math.sqrt(2 / math.pi)


@dataclass(frozen=True)
class DriftStatistic:
    name: str
    value: float
    threshold: float
    noise_floor: float
    title: str
    detail: str
    # The check id is ``<group>.<name>``: ``drift``, or ``witness`` for the champion's figures.
    group: str = "drift"
    # The class a class-conditional statistic was reported for (its worst class), else None.
    label: str | None = None

    @property
    def effective_threshold(self) -> float:
        return max(self.threshold, self.noise_floor)

    @property
    def passed(self) -> bool:
        return self.value <= self.effective_threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": round(self.value, 6),
            "threshold": self.threshold,
            "noise_floor": round(self.noise_floor, 6),
            "effective_threshold": round(self.effective_threshold, 6),
            "passed": self.passed,
            "description": self.title,
            "detail": self.detail,
        }


def _label_tv(
    labels: np.ndarray, reference: dict[str, Any], se: float, cfg: ValidationConfig
) -> DriftStatistic:
    ref = {int(k): float(v) for k, v in reference["labels"]["distribution"].items()}
    values, counts = np.unique(labels, return_counts=True)
    cur = {int(v): c / len(labels) for v, c in zip(values, counts, strict=True)}
    classes = sorted(set(ref) | set(cur))
    diffs = {c: cur.get(c, 0.0) - ref.get(c, 0.0) for c in classes}
    tv = 0.5 * sum(abs(d) for d in diffs.values())
    sigmas = [math.sqrt(p * (1 - p)) * se for p in ref.values()]
    noise = 0.5 * _HALF_NORMAL_MEAN * sum(sigmas) + cfg.drift_noise_sigmas * 0.5 * math.sqrt(
        (1 - 2 / math.pi) * sum(s * s for s in sigmas)
    )
    top = max(classes, key=lambda c: abs(diffs[c]))
    detail = f"largest change: class {top} {ref.get(top, 0.0):.1%} -> {cur.get(top, 0.0):.1%}"
    return DriftStatistic(
        "label_tv", tv, cfg.max_label_drift, noise, "label distribution drift (total variation)", detail
    )


def _shift(
    name: str, what: str, values: np.ndarray, ref: dict[str, Any], se: float, limit: float, sigmas: float
) -> DriftStatistic:
    current = float(values.mean())
    spread = ref["std"] if ref["std"] and ref["std"] > 0 else 1e-12
    shift = abs(current - ref["mean"]) / spread
    detail = f"mean {what} {current:.4g} vs reference {ref['mean']:.4g} (reference std {ref['std']:.3g})"
    title = f"shift of the mean {what}, in reference std units"
    return DriftStatistic(name, shift, limit, sigmas * se, title, detail)


def _ks(
    name: str,
    what: str,
    values: np.ndarray,
    ref: dict[str, Any],
    se: float,
    limit: float,
    sigmas: float,
    group: str = "drift",
) -> DriftStatistic:
    quantiles = np.asarray(ref["quantiles"], dtype=np.float64)
    levels = np.linspace(0, 1, len(quantiles))
    ecdf = np.searchsorted(np.sort(values), quantiles, side="right") / len(values)
    gaps = np.abs(ecdf - levels)
    worst = int(np.argmax(gaps))
    grid = 1 / (len(quantiles) - 1)  # the ECDF is only compared at the reference's quantiles
    noise = (_KS_MEAN + sigmas * _KS_SD) * se + grid
    detail = (
        f"largest gap at {what} {quantiles[worst]:.4g}: {ecdf[worst]:.1%} of examples below vs"
        f" {levels[worst]:.1%} in the reference"
    )
    title = f"KS distance of the per-example {what} distribution"
    return DriftStatistic(name, float(gaps[worst]), limit, noise, title, detail, group)


def compare_to_reference(
    labels: np.ndarray,
    example_mean: np.ndarray,
    example_std: np.ndarray,
    reference: dict[str, Any],
    cfg: ValidationConfig,
) -> list[DriftStatistic]:
    """Drift statistics of the current examples against a reference profile (``profile_split``).

    Examples whose statistics are not finite (all-NaN rows) are left out; other checks report them.
    """
    finite = np.isfinite(example_mean) & np.isfinite(example_std)
    means, stds = example_mean[finite], example_std[finite]
    out: list[DriftStatistic] = []
    sigmas = cfg.drift_noise_sigmas
    if len(labels) and reference.get("rows"):
        se = math.sqrt(1 / len(labels) + 1 / reference["rows"])
        out.append(_label_tv(labels, reference, se, cfg))
    ref_mean, ref_std = reference.get("example_mean", {}), reference.get("example_std", {})
    if len(means) and ref_mean.get("count") and ref_std.get("count"):
        se = math.sqrt(1 / len(means) + 1 / ref_mean["count"])
        limits = cfg.max_mean_intensity_shift, cfg.max_std_intensity_shift, cfg.max_intensity_ks
        out += [
            _shift("mean_intensity_shift", "intensity", means, ref_mean, se, limits[0], sigmas),
            _shift("std_intensity_shift", "contrast (std)", stds, ref_std, se, limits[1], sigmas),
            _ks("mean_intensity_ks", "intensity", means, ref_mean, se, limits[2], sigmas),
            _ks("std_intensity_ks", "contrast (std)", stds, ref_std, se, limits[2], sigmas),
        ]
    return out
