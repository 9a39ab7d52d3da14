"""Snapshots: content-addressed keys, write-once storage, faithful reload; profiles."""

from __future__ import annotations

import json

import numpy as np
import pytest

from slipway.data.dataset import DataError, Snapshot, Split
from slipway.data.profile import QUANTILE_POINTS, profile_split
from slipway.data.snapshot import load_manifest, load_profile, load_snapshot, save_snapshot
from slipway.store import ArtifactStore
from tests import data_fixtures as fx

local_store = fx.local_store


def make_snapshot(seed: int = 0, n: int = 120) -> Snapshot:
    rng = np.random.default_rng(seed)

    def split(rows: int) -> Split:
        return Split(rng.random((rows, 4, 4), dtype=np.float32), rng.integers(0, 3, rows).astype(np.int64))

    return Snapshot(split(n), split(n // 4), split(n // 4))


def test_same_data_same_key_and_no_rewrite(local_store: ArtifactStore) -> None:
    snap = make_snapshot()
    key = save_snapshot(local_store, snap, "demo")
    assert key == f"datasets/demo/{snap.content_hash[:16]}"
    files = sorted(local_store.list(key))
    assert files == [f"{key}/manifest.json", f"{key}/profile.json", f"{key}/snapshot.npz"]
    etags = {f: local_store.get_with_etag(f)[1] for f in files}
    mtimes = {f: (local_store.root / f).stat().st_mtime_ns for f in files}

    again = save_snapshot(local_store, make_snapshot(), "demo")
    assert again == key
    assert {f: local_store.get_with_etag(f)[1] for f in files} == etags
    assert {f: (local_store.root / f).stat().st_mtime_ns for f in files} == mtimes

    other = save_snapshot(local_store, make_snapshot(seed=1), "demo")
    assert other != key


def test_reload_is_faithful_and_typed(local_store: ArtifactStore) -> None:
    snap = make_snapshot()
    key = save_snapshot(local_store, snap, "demo")
    back = load_snapshot(local_store, key)
    assert back.content_hash == snap.content_hash
    for name in ("train", "validation", "test"):
        assert getattr(back, name).x.dtype == np.float32 and getattr(back, name).y.dtype == np.int64
    manifest = load_manifest(local_store, key)
    assert manifest["sha256"] == snap.content_hash
    assert manifest["splits"]["train"] == {
        "rows": 120,
        "x_shape": [120, 4, 4],
        "x_dtype": "float32",
        "y_dtype": "int64",
    }
    profile = load_profile(local_store, key)
    assert profile["all"]["rows"] == 180 and profile["train"]["rows"] == 120


def test_a_half_written_snapshot_is_completed_not_overwritten(local_store: ArtifactStore) -> None:
    snap = make_snapshot()
    key = save_snapshot(local_store, snap, "demo")
    local_store.delete(f"{key}/manifest.json")  # as if the writer crashed before the manifest
    assert save_snapshot(local_store, snap, "demo") == key
    assert local_store.exists(f"{key}/manifest.json")


def test_corruption_is_detected_on_load(local_store: ArtifactStore) -> None:
    key = save_snapshot(local_store, make_snapshot(), "demo")
    other = save_snapshot(local_store, make_snapshot(seed=5), "demo")
    local_store.put_bytes(f"{key}/snapshot.npz", local_store.get_bytes(f"{other}/snapshot.npz"))
    with pytest.raises(DataError, match="is corrupt: content hash"):
        load_snapshot(local_store, key)
    local_store.put_bytes(f"{key}/snapshot.npz", b"garbage")
    with pytest.raises(DataError, match="is unreadable"):
        load_snapshot(local_store, key)


def test_snapshot_contract_is_enforced(local_store: ArtifactStore) -> None:
    snap = make_snapshot()
    bad = Snapshot(Split(snap.train.x.astype(np.float64), snap.train.y), snap.validation, snap.test)
    with pytest.raises(DataError, match="float32 inputs and int64 labels, got float64"):
        save_snapshot(local_store, bad, "demo")


def test_profile_summarises_labels_and_example_intensities() -> None:
    rng = np.random.default_rng(0)
    x = (
        rng.random((1000, 8, 8), dtype=np.float32)
        * np.linspace(0.2, 1, 1000, dtype=np.float32)[:, None, None]
    )
    y = np.repeat(np.arange(4), 250).astype(np.int64)
    x[0, 0, 0] = np.nan
    profile = profile_split(Split(x, y))
    json.dumps(profile, allow_nan=False)  # strictly JSON-able
    assert profile["rows"] == 1000 and profile["example_shape"] == [8, 8]
    assert profile["labels"]["distribution"] == {"0": 0.25, "1": 0.25, "2": 0.25, "3": 0.25}
    means = profile["example_mean"]
    assert len(means["quantiles"]) == QUANTILE_POINTS and means["quantiles"] == sorted(means["quantiles"])
    assert means["count"] == 1000 and abs(means["mean"] - np.nanmean(x)) < 1e-3
    assert sum(means["histogram"]["counts"]) == 1000
    assert profile["values"]["nan_count"] == 1
    assert 0.0 <= profile["values"]["min"] < profile["values"]["max"] <= 1.0
    flat = x.reshape(1000, -1)
    assert abs(profile["values"]["std"] - np.nanstd(flat)) < 1e-3


def test_profile_of_an_empty_split_is_valid_json() -> None:
    profile = profile_split(Split(np.zeros((0, 4), np.float32), np.zeros(0, np.int64)))
    json.dumps(profile, allow_nan=False)
    assert profile["rows"] == 0 and profile["example_mean"] == {"count": 0}
