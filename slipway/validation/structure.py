"""Structural drift: where the ink is, overall and per class, against the reference profile.

Each statistic compares a vector of the partition (the per-feature mean map, the per-feature std
map, the row or column intensity profile) with the reference's, as a root-mean-square of
standardised differences::

    z_j = (new_j - ref_j) / sqrt(spread_j^2 + eps^2)      statistic = sqrt(mean_j z_j^2)

``spread_j`` is the reference's across-example standard deviation of that value (for the std map,
the reference std of the pixel), ``eps`` a tenth of the spreads' RMS so an always-blank border
pixel cannot divide by zero. The statistic is an effect size in reference-std units: 0 for the
same data, ~0.3-1 when content moves by a pixel or two, when a tenth of the partition comes
from another domain, or when labels are swapped between classes (class-conditional maps).

Noise floor. Without drift each difference has sampling variance ``se^2 * v_j`` with
``se^2 = 1/n + 1/n_ref`` and ``v_j`` known from the reference (``spread_j^2`` for a mean;
``std_se_j^2``, from the fourth moment, for a std), so the statistic's expected value is
``se * sqrt(mean_j v_j / (spread_j^2 + eps^2))``. The threshold is raised to that value times
``1 + drift_noise_sigmas * _RMS_SPREAD`` when larger (``_RMS_SPREAD``: relative standard
deviation of the RMS, bounded by calibration on Fashion-MNIST; see ``bench/README.md``).

Class-conditional statistics are computed per class (each with its own size and noise floor) and
the class closest to - or furthest over - its threshold is reported, by name.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from slipway.config import ValidationConfig
from slipway.data.structure import profiles_of
from slipway.validation.drift import DriftStatistic

# Relative standard deviation of an RMS of correlated standardised differences, per kind of
# vector: measured on clean Fashion-MNIST partitions (statistic / expected value: sd 0.1-0.23 for
# the 784-pixel maps, 0.25-0.4 for the 28-value profiles), rounded up.
_RMS_SPREAD = {"mean_map": 0.3, "std_map": 0.3, "row": 0.5, "column": 0.5}
_EPS_SHARE = 0.1
MIN_CLASS_ROWS = 10


def _distance(
    new: np.ndarray, ref: np.ndarray, spread: np.ndarray, noise: np.ndarray
) -> tuple[float, float, int]:
    """(RMS of z, expected RMS at se = 1, index of the largest absolute change)."""
    spread = np.asarray(spread, dtype=np.float64)
    eps = _EPS_SHARE * float(np.sqrt(np.mean(spread**2))) or 1e-12
    scale2 = spread**2 + eps**2
    diff = np.asarray(new, dtype=np.float64) - np.asarray(ref, dtype=np.float64)
    z = diff / np.sqrt(scale2)
    expected = float(np.sqrt(np.mean(np.asarray(noise, dtype=np.float64) ** 2 / scale2)))
    return float(np.sqrt(np.mean(z * z))), expected, int(np.argmax(np.abs(diff)))


def _where(index: int, grid: list[int] | None, kind: str, size: int) -> str:
    if kind in ("row", "column"):
        return f"{kind} {index}"
    if grid:
        h, w = int(grid[0]), int(grid[1])
        pixel = index // max(1, size // (h * w))  # channels last
        return f"pixel (row {pixel // w}, column {pixel % w})"
    return f"feature {index}"


def _compare(
    kind: str,
    new: dict[str, Any],
    ref: dict[str, Any],
    grid: list[int] | None,
) -> tuple[float, float, str] | None:
    """(statistic, expected at se = 1, where it moved most) for one kind of vector."""
    if kind == "mean_map":
        ref_values, spread = ref["mean_map"], ref["std_map"]
        found = _distance(new["mean_map"], ref_values, spread, spread)
        return _with_where(found, grid, "pixel", len(spread))
    if kind == "std_map":
        spread = ref["std_map"]
        found = _distance(new["std_map"], spread, spread, ref["std_se_map"])
        return _with_where(found, grid, "pixel", len(spread))
    key = f"{kind}_profile"
    if grid is None or key not in ref:
        return None
    current = profiles_of(new["mean_map"], grid)[kind]
    spread = ref[key]["std"]
    return _with_where(_distance(current, ref[key]["mean"], spread, spread), grid, kind)


def _with_where(
    found: tuple[float, float, int], grid: list[int] | None, kind: str, size: int = 0
) -> tuple[float, float, str]:
    value, expected, index = found
    return value, expected, _where(index, grid, kind, size)


_KINDS = {
    "mean_map": (
        "pixel_mean_map",
        "per-pixel mean map",
        "max_pixel_mean_shift",
        "max_class_pixel_mean_shift",
    ),
    "std_map": ("pixel_std_map", "per-pixel std map", "max_pixel_std_shift", "max_class_pixel_std_shift"),
    "row": ("row_profile", "row intensity profile", "max_profile_shift", "max_class_profile_shift"),
    "column": ("column_profile", "column intensity profile", "max_profile_shift", "max_class_profile_shift"),
}


def _floor(kind: str, expected: float, se: float, sigmas: float) -> float:
    return expected * se * (1 + sigmas * _RMS_SPREAD[kind])


def _class_name(label: str, class_names: list[str] | None) -> str:
    i = int(label)
    return f"{label} ({class_names[i]})" if class_names and 0 <= i < len(class_names) else label


def compare_structure(
    moments: dict[str, Any],
    reference: dict[str, Any],
    cfg: ValidationConfig,
    class_names: list[str] | None = None,
) -> list[DriftStatistic]:
    """Structural drift statistics of a partition (``structure_moments``) against a reference
    structure (``structure_profile``); empty when either side has no examples or shapes differ."""
    total, ref_total = moments["all"], reference["all"]
    if not total["count"] or len(total["mean_map"]) != len(ref_total["mean_map"]):
        return []
    grid = reference.get("grid")
    sigmas = cfg.drift_noise_sigmas
    out: list[DriftStatistic] = []
    se = math.sqrt(1 / total["count"] + 1 / ref_total["count"])
    for kind, (name, what, limit_field, _) in _KINDS.items():
        found = _compare(kind, total, ref_total, grid)
        if found is None:
            continue
        value, expected, where = found
        title = f"structure: shift of the {what}, RMS in reference std units"
        detail = f"largest change at {where}"
        out.append(
            DriftStatistic(
                f"structure_{name}",
                value,
                getattr(cfg, limit_field),
                _floor(kind, expected, se, sigmas),
                title,
                detail,
            )
        )
    for kind, (name, what, _, limit_field) in _KINDS.items():
        worst: DriftStatistic | None = None
        for label, current in moments["classes"].items():
            ref_class = reference["classes"].get(label)
            if ref_class is None or current["count"] < MIN_CLASS_ROWS:
                continue  # an unknown class or a handful of rows: the label checks speak for them
            found = _compare(kind, current, ref_class, grid)
            if found is None:
                continue
            value, expected, where = found
            se_c = math.sqrt(1 / current["count"] + 1 / ref_class["count"])
            stat = DriftStatistic(
                f"class_{name}",
                value,
                getattr(cfg, limit_field),
                _floor(kind, expected, se_c, sigmas),
                f"structure per class: shift of a class's {what}, RMS in reference std units (worst class)",
                f"class {_class_name(label, class_names)} ({current['count']} rows), largest change at {where}",
                label=label,
            )
            if (
                worst is None
                or stat.value / stat.effective_threshold > worst.value / worst.effective_threshold
            ):
                worst = stat
        if worst is not None:
            out.append(worst)
    return out
