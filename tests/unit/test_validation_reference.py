"""The reference profile: promoted with the champion, idempotent, importable without the heavy
stack (the promote task runs on an Airflow worker)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from slipway.data.dataset import Snapshot, Split
from slipway.data.snapshot import save_snapshot
from slipway.store import ArtifactStore
from slipway.validation import load_reference, promote_reference, reference_key
from slipway.validation.reference import adopt_first_reference
from tests import data_fixtures as fx

local_store = fx.local_store
REPO = Path(__file__).resolve().parents[2]


def snapshot(seed: int) -> Snapshot:
    rng = np.random.default_rng(seed)

    def split(n: int) -> Split:
        return Split(rng.random((n, 6, 6), dtype=np.float32), rng.integers(0, 4, n).astype(np.int64))

    return Snapshot(split(200), split(20), split(40))


def test_promote_reference_uses_the_training_profile_and_is_idempotent(local_store: ArtifactStore) -> None:
    first = save_snapshot(local_store, snapshot(0), "p")
    second = save_snapshot(local_store, snapshot(1), "p")
    assert adopt_first_reference(local_store, "p", first, "run-1")
    assert not adopt_first_reference(local_store, "p", second, "run-2")  # create-only
    assert load_reference(local_store, "p")["snapshot_key"] == first

    document = promote_reference(local_store, "p", second, run_id="run-9")
    assert document["snapshot_key"] == second and document["previous_snapshot_key"] == first
    assert document["reason"] == "champion promoted" and document["split"] == "train"
    assert document["profile"]["rows"] == 200
    assert document["snapshot_hash"] == snapshot(1).content_hash
    stored = local_store.get_bytes(reference_key("p"))
    assert promote_reference(local_store, "p", second) == document
    assert local_store.get_bytes(reference_key("p")) == stored  # no rewrite


def test_promote_reference_computes_a_missing_profile(local_store: ArtifactStore) -> None:
    key = save_snapshot(local_store, snapshot(2), "p")
    local_store.delete(f"{key}/profile.json")
    assert promote_reference(local_store, "p", key)["profile"]["rows"] == 200


def test_no_reference_before_the_first_accepted_snapshot(local_store: ArtifactStore) -> None:
    assert load_reference(local_store, "nothing-yet") is None


def test_promote_reference_imports_neither_pandas_gx_tensorflow_nor_airflow() -> None:
    code = (
        "import sys; from slipway.validation import promote_reference; "
        "heavy = {'pandas', 'great_expectations', 'tensorflow', 'airflow', 'sklearn'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
