"""The golden test set: frozen once from a snapshot's test split, never rewritten, verified on load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slipway.data import Snapshot, Split, save_snapshot
from slipway.data.dataset import DataError
from slipway.evaluation.golden import freeze_golden, golden_data_key, load_golden, load_golden_record
from slipway.store import open_store


def snapshot(seed: int) -> Snapshot:
    rng = np.random.default_rng(seed)

    def split(n: int) -> Split:
        return Split(rng.random((n, 4, 4), dtype=np.float32), rng.integers(0, 3, n).astype(np.int64))

    return Snapshot(split(30), split(5), split(12))


def test_first_freeze_wins_and_the_data_is_verified(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    first, second = snapshot(0), snapshot(1)
    key1, key2 = save_snapshot(store, first, "d"), save_snapshot(store, second, "d")
    assert load_golden_record(store, "p") is None

    record = freeze_golden(store, "p", key1, reason="first champion promoted", run_id="r1")
    assert record["snapshot_key"] == key1 and record["rows"] == 12 and record["split"] == "test"
    again = freeze_golden(store, "p", key2, reason="a later promotion", run_id="r2")
    assert again == record == load_golden_record(store, "p")

    golden = load_golden(store, record)
    np.testing.assert_array_equal(golden.x, first.test.x)
    np.testing.assert_array_equal(golden.y, first.test.y)

    store.put_bytes(golden_data_key("p"), store.get_bytes(golden_data_key("p"))[:-8] + b"tampered")
    with pytest.raises(DataError, match="does not match its recorded hash"):
        load_golden(store, record)
