"""Split: deterministic in the seed, exact sizes, own test split kept, optional stratification."""

from __future__ import annotations

import numpy as np
import pytest

from slipway.config import SplitConfig
from slipway.data.dataset import Split
from slipway.data.sources import RawData
from slipway.data.split import split_data


def raw(n: int = 1000, classes: int = 4, test: int = 0) -> RawData:
    rng = np.random.default_rng(7)
    x = rng.random((n, 3, 3), dtype=np.float32)
    x[:, 0, 0] = np.arange(n)  # row identity, to follow examples through the split
    y = rng.integers(0, classes, n).astype(np.int64)
    if not test:
        return RawData(x, y, origin="mem")
    tx = rng.random((test, 3, 3), dtype=np.float32)
    return RawData(x, y, origin="mem", test_x=tx, test_y=np.zeros(test, dtype=np.int64))


def ids(split: Split) -> np.ndarray:
    return split.x[:, 0, 0].astype(int)


@pytest.mark.parametrize("stratify", [False, True])
def test_same_seed_same_snapshot_other_seed_other_order(stratify: bool) -> None:
    data = raw()
    a = split_data(data, SplitConfig(seed=3, stratify=stratify))
    b = split_data(data, SplitConfig(seed=3, stratify=stratify))
    c = split_data(data, SplitConfig(seed=4, stratify=stratify))
    assert a.content_hash == b.content_hash
    assert a.content_hash != c.content_hash


def test_sizes_and_disjoint_cover() -> None:
    snap = split_data(raw(1000), SplitConfig(validation_fraction=0.1, test_fraction=0.2))
    assert (len(snap.train), len(snap.validation), len(snap.test)) == (700, 100, 200)
    everything = np.concatenate([ids(snap.train), ids(snap.validation), ids(snap.test)])
    assert sorted(everything.tolist()) == list(range(1000))


def test_own_test_split_is_kept_and_validation_is_carved_from_train() -> None:
    data = raw(1000, test=50)
    snap = split_data(data, SplitConfig(validation_fraction=0.2, test_fraction=0.3))
    np.testing.assert_array_equal(snap.test.x, data.test_x)
    assert (len(snap.train), len(snap.validation)) == (800, 200)


def test_stratified_split_keeps_class_shares() -> None:
    data = raw(2000, classes=5)
    snap = split_data(data, SplitConfig(validation_fraction=0.1, test_fraction=0.2, stratify=True))
    overall = np.bincount(data.y, minlength=5) / len(data.y)
    for part in (snap.train, snap.validation, snap.test):
        shares = np.bincount(part.y, minlength=5) / len(part.y)
        np.testing.assert_allclose(shares, overall, atol=0.01)


def test_fractions_must_leave_training_data() -> None:
    with pytest.raises(ValueError, match="nothing would be left to train on"):
        SplitConfig(validation_fraction=0.5, test_fraction=0.5)
