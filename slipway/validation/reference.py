"""The drift reference: the profile of the data the current champion was trained on.

Stored at ``references/<pipeline>/reference.json``::

    {pipeline, snapshot_key, snapshot_hash, split: "train", profile: {...profile_split...},
     reason, run_id, updated_at, previous_snapshot_key}

Who writes it:

* the validate step, only on a pipeline's first run and only if validation passed
  (``adopt_first_reference``, create-only: a concurrent first run cannot overwrite it);
* the pipeline's promote task when a new champion is promoted (``promote_reference``).

Bad data never becomes the reference: a failed validation writes nothing here. This module only
needs numpy and the store (no pandas, Great Expectations, TensorFlow or Airflow), so the promote
task can call it from an Airflow worker.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from slipway.data.snapshot import load_manifest, load_profile, load_snapshot
from slipway.store.base import ArtifactNotFound, ArtifactStore, PreconditionFailed

log = logging.getLogger(__name__)

REFERENCE_SPLIT = "train"


def reference_key(pipeline: str) -> str:
    return f"references/{pipeline}/reference.json"


def load_reference(store: ArtifactStore, pipeline: str) -> dict[str, Any] | None:
    """The pipeline's reference document, or None before the first accepted snapshot."""
    try:
        return store.get_json(reference_key(pipeline))
    except ArtifactNotFound:
        return None


def _training_profile(store: ArtifactStore, snapshot_key: str) -> dict[str, Any]:
    try:
        profile = load_profile(store, snapshot_key)[REFERENCE_SPLIT]
    except ArtifactNotFound:  # a snapshot stored without its profile: compute it
        profile = None
    if profile is None or "structure" not in profile:  # or one stored before structure profiles
        from slipway.data.profile import profile_split

        profile = profile_split(load_snapshot(store, snapshot_key).train)
    return profile


def build_reference(
    store: ArtifactStore,
    pipeline: str,
    snapshot_key: str,
    reason: str,
    run_id: str | None = None,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A reference document for the training split of the snapshot at ``snapshot_key``."""
    try:
        snapshot_hash = load_manifest(store, snapshot_key)["sha256"]
    except ArtifactNotFound:
        snapshot_hash = None
    return {
        "pipeline": pipeline,
        "snapshot_key": snapshot_key,
        "snapshot_hash": snapshot_hash,
        "split": REFERENCE_SPLIT,
        "profile": _training_profile(store, snapshot_key),
        "reason": reason,
        "run_id": run_id,
        "updated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "previous_snapshot_key": (previous or {}).get("snapshot_key"),
    }


def adopt_first_reference(store: ArtifactStore, pipeline: str, snapshot_key: str, run_id: str | None) -> bool:
    """Make an accepted snapshot the reference if the pipeline has none yet; True if it did."""
    document = build_reference(store, pipeline, snapshot_key, "first accepted snapshot", run_id)
    try:
        store.put_json_if_absent(reference_key(pipeline), document)
    except PreconditionFailed:
        return False
    log.info("no reference profile yet: %s is now the reference of %s", snapshot_key, pipeline)
    return True


def promote_reference(
    store: ArtifactStore, pipeline: str, snapshot_key: str, *, run_id: str | None = None
) -> dict[str, Any]:
    """Make the training data of a newly promoted champion the pipeline's drift reference.

    Idempotent: promoting the snapshot that is already the reference rewrites nothing. Returns
    the reference document now in force.
    """
    current = load_reference(store, pipeline)
    if current is not None and current.get("snapshot_key") == snapshot_key:
        return current
    document = build_reference(store, pipeline, snapshot_key, "champion promoted", run_id, previous=current)
    store.put_json(reference_key(pipeline), document)
    log.info("reference profile of %s is now %s (champion's training data)", pipeline, snapshot_key)
    return document
