"""The golden test set: a pinned evaluation set per pipeline that the feed cannot poison.

Why: the gate used to score the champion on the *new* snapshot's test split only. A feed whose
labels are wrong in its training and its test part makes the champion look terrible there and a
candidate trained on it look great. On a fixed set with trusted labels the candidate's damage
shows, and the champion's own collapse on the new split (while it holds up on the golden set)
marks the data as suspect.

Where it comes from:

* ``golden.source`` in the pipeline config (any data source; its own test split when it ships
  one, else all of its examples), read afresh each evaluation; or, by default,
* the test split of the snapshot the first champion was promoted on, frozen in the store at that
  promotion (create-only, never rewritten)::

      golden/<pipeline>/golden.json   {pipeline, snapshot_key, split, rows, sha256, reason,
                                       run_id, frozen_at}
      golden/<pipeline>/golden.npz    x, y of that split (a copy: the snapshot may be deleted)

``freeze_golden`` needs only numpy and the store, so the promote task can call it on an Airflow
worker. A pipeline that already had a champion before golden sets existed gets the champion's
registered snapshot's test split frozen on its next evaluation.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import logging
from typing import Any

import numpy as np

from slipway.data.dataset import DataError, Split
from slipway.store.base import ArtifactNotFound, ArtifactStore, PreconditionFailed

log = logging.getLogger(__name__)


def golden_key(pipeline: str) -> str:
    return f"golden/{pipeline}/golden.json"


def golden_data_key(pipeline: str) -> str:
    return f"golden/{pipeline}/golden.npz"


def load_golden_record(store: ArtifactStore, pipeline: str) -> dict[str, Any] | None:
    try:
        return store.get_json(golden_key(pipeline))
    except ArtifactNotFound:
        return None


def freeze_golden(
    store: ArtifactStore, pipeline: str, snapshot_key: str, *, reason: str, run_id: str | None = None
) -> dict[str, Any]:
    """Freeze the test split of ``snapshot_key`` as the pipeline's golden set, unless one exists.

    Returns the record in force (the existing one when the pipeline already has a golden set).
    """
    existing = load_golden_record(store, pipeline)
    if existing is not None:
        return existing
    from slipway.data.snapshot import load_snapshot

    test = load_snapshot(store, snapshot_key).test
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, x=test.x, y=test.y)
    data = buffer.getvalue()
    with contextlib.suppress(PreconditionFailed):  # a concurrent freeze wrote it first
        store.put_if_absent(golden_data_key(pipeline), data)
    data = store.get_bytes(golden_data_key(pipeline))  # the record describes what is stored
    record = {
        "pipeline": pipeline,
        "source": "snapshot",
        "snapshot_key": snapshot_key,
        "split": "test",
        "rows": len(load_golden_bytes(data)),
        "sha256": hashlib.sha256(data).hexdigest(),
        "data_key": golden_data_key(pipeline),
        "reason": reason,
        "run_id": run_id,
        "frozen_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    try:
        store.put_json_if_absent(golden_key(pipeline), record)
    except PreconditionFailed:
        return store.get_json(golden_key(pipeline))
    log.info("golden test set of %s frozen: test split of %s (%d rows)", pipeline, snapshot_key, len(test))
    return record


def load_golden(store: ArtifactStore, record: dict[str, Any]) -> Split:
    """The frozen golden examples; their bytes must still match the recorded hash."""
    data = store.get_bytes(record["data_key"])
    if hashlib.sha256(data).hexdigest() != record["sha256"]:
        raise DataError(f"golden set {store.uri(record['data_key'])} does not match its recorded hash")
    return load_golden_bytes(data)


def load_golden_bytes(data: bytes) -> Split:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return Split(archive["x"], archive["y"])


def configured_golden(source: Any) -> tuple[Split, dict[str, Any]]:
    """Read a configured golden source: its test split when it ships one, else all examples."""
    from slipway.data.sources import read_source

    raw = read_source(source)
    if raw.has_test:
        assert raw.test_x is not None and raw.test_y is not None  # has_test says so
        split, which = Split(raw.test_x, raw.test_y), "test"
    else:
        split, which = Split(raw.x, raw.y), "all"
    return split, {"source": "configured", "origin": raw.origin, "split": which, "rows": len(split)}
