"""A compact, JSON-able profile of a split: the drift reference and a record of what was ingested.

Holds what the drift checks compare (label distribution, the distributions of per-example mean
and standard deviation as 101 quantiles plus a histogram) and global value statistics for
people. A few kilobytes whatever the data size, so a reference is cheap to store and to read
from an Airflow worker that has numpy but not pandas or TensorFlow.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from slipway.data.dataset import Snapshot, Split
from slipway.data.rowstats import RowStats, flat_numeric, row_stats
from slipway.data.structure import structure_profile

PROFILE_VERSION = 1
QUANTILE_POINTS = 101
HISTOGRAM_BINS = 20


def _round(value: float) -> float | None:
    return None if not np.isfinite(value) else float(round(float(value), 8))


def distribution(values: np.ndarray) -> dict[str, Any]:
    """Summary of one per-example statistic: moments, 101 quantiles, a 20-bin histogram."""
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return {"count": 0}
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS)
    return {
        "count": len(values),
        "mean": _round(values.mean()),
        "std": _round(values.std()),
        "min": _round(values.min()),
        "max": _round(values.max()),
        "quantiles": [_round(q) for q in np.quantile(values, np.linspace(0, 1, QUANTILE_POINTS))],
        "histogram": {"edges": [_round(e) for e in edges], "counts": counts.tolist()},
    }


def label_counts(y: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(y, return_counts=True)
    return {str(int(v)): int(c) for v, c in zip(values, counts, strict=True)}


def profile_split(split: Split, stats: RowStats | None = None, *, structure: bool = True) -> dict[str, Any]:
    """The profile of one split; pass ``stats`` when they are already computed.

    With ``structure`` it also holds ``structure`` (``slipway.data.structure.structure_profile``:
    mean / std maps and row / column profiles, overall and per class; ~150 KB for 28x28 x 10
    classes), which the structural drift checks compare against.
    """
    stats = stats if stats is not None else row_stats(split.x)
    n = len(split)
    counts = label_counts(split.y)
    flat = flat_numeric(split.x)
    finite_means = stats.mean[np.isfinite(stats.mean)]
    global_mean = float(finite_means.mean()) if len(finite_means) else float("nan")
    # Equal-size rows: the global variance is the mean of (row variance + row mean^2) - mean^2.
    second = (stats.std**2 + stats.mean**2)[np.isfinite(stats.mean)]
    global_std = float(np.sqrt(max(second.mean() - global_mean**2, 0.0))) if len(second) else float("nan")
    return {
        "version": PROFILE_VERSION,
        "rows": n,
        "example_shape": [int(d) for d in np.shape(split.x)[1:]],
        "labels": {
            "counts": counts,
            "distribution": {k: round(v / n, 8) for k, v in counts.items()} if n else {},
        },
        "example_mean": distribution(stats.mean),
        "example_std": distribution(stats.std),
        "values": {
            "min": _round(np.nanmin(stats.min)) if n and np.isfinite(stats.min).any() else None,
            "max": _round(np.nanmax(stats.max)) if n and np.isfinite(stats.max).any() else None,
            "mean": _round(global_mean),
            "std": _round(global_std),
            "zero_fraction": _round(float((flat == 0).mean())) if flat.size else None,
            "nan_count": int(stats.nan_count.sum()),
        },
        **({"structure": structure_profile(split.x, split.y)} if structure else {}),
    }


def profile_snapshot(snapshot: Snapshot) -> dict[str, Any]:
    """Profiles of each split and of all examples together (what validation sees).

    Only the training split carries the structure summary: it is the split a reference is
    taken from (``slipway.validation.reference``), and the others would only make the file larger.
    """
    names = ("train", "validation", "test")
    stats = {name: row_stats(getattr(snapshot, name).x) for name in names}
    out: dict[str, Any] = {"version": PROFILE_VERSION}
    out.update(
        {
            name: profile_split(getattr(snapshot, name), stats[name], structure=name == "train")
            for name in names
        }
    )
    out["all"] = profile_split(
        snapshot.all(), RowStats.concat([stats[name] for name in names]), structure=False
    )
    return out
