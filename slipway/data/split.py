"""Deterministic train / validation / test split of one partition.

A seeded permutation, so the same data and seed always give the same snapshot (and so the same
content hash: reruns reuse the stored snapshot). A source with its own test split keeps it
untouched and the validation split is carved from its training examples; otherwise both
fractions are shares of all examples. With ``stratify`` each class is split separately, so every
split keeps the class shares (to within one example per class).
"""

from __future__ import annotations

import numpy as np

from slipway.config import SplitConfig
from slipway.data.dataset import Snapshot, Split
from slipway.data.sources.base import RawData


def _counts(n: int, fractions: tuple[float, ...]) -> list[int]:
    return [round(n * f) for f in fractions]


def _partition(
    y: np.ndarray, fractions: tuple[float, ...], stratify: bool, rng: np.random.Generator
) -> list[np.ndarray]:
    """Index arrays, one per fraction, plus the rest; each shuffled."""
    if not stratify:
        order = rng.permutation(len(y))
        groups = [order]
    else:
        groups = [rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)]
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for group in groups:
        start = 0
        for i, count in enumerate(_counts(len(group), fractions)):
            parts[i].append(group[start : start + count])
            start += count
        parts[-1].append(group[start:])
    out = []
    for chunks in parts:
        idx = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int64)
        out.append(rng.permutation(idx) if stratify else idx)
    return out


def split_data(raw: RawData, cfg: SplitConfig) -> Snapshot:
    """The snapshot's three splits, deterministic in ``cfg.seed``."""
    rng = np.random.default_rng(cfg.seed)
    own_test = raw.own_test()
    if own_test is not None:
        val_idx, train_idx = _partition(raw.y, (cfg.validation_fraction,), cfg.stratify, rng)
        test = Split(*own_test)
    else:
        test_idx, val_idx, train_idx = _partition(
            raw.y, (cfg.test_fraction, cfg.validation_fraction), cfg.stratify, rng
        )
        test = Split(raw.x[test_idx], raw.y[test_idx])
    return Snapshot(
        train=Split(raw.x[train_idx], raw.y[train_idx]),
        validation=Split(raw.x[val_idx], raw.y[val_idx]),
        test=test,
    )
