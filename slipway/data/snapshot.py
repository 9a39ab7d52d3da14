"""Snapshot I/O: a content-addressed, write-once dataset in the artifact store.

Layout under ``datasets/<name>/<sha256[:16]>/``:

* ``snapshot.npz`` - uncompressed ``x_<split>`` (float32) and ``y_<split>`` (int64) for train,
  validation and test; uncompressed because images compress poorly and loading must be fast;
* ``profile.json`` - ``profile_snapshot`` (the drift reference is taken from it);
* ``manifest.json`` - full hash, shapes and dtypes; written last, so its presence means the
  snapshot is complete.

Every object is written with ``put_if_absent``: the same data always lands at the same key, a
rerun finds the manifest and writes nothing, and a racing or crashed earlier writer cannot be
overwritten with different bytes under the same hash.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from typing import Any

import numpy as np

from slipway.data.dataset import DataError, Snapshot, Split
from slipway.data.profile import profile_snapshot
from slipway.store.base import ArtifactStore, PreconditionFailed

log = logging.getLogger(__name__)

SNAPSHOT_FILE = "snapshot.npz"
PROFILE_FILE = "profile.json"
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1
SPLITS = ("train", "validation", "test")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def snapshot_key(name: str, content_hash: str) -> str:
    """``datasets/<name>/<hash[:16]>``: the prefix all of a snapshot's files live under."""
    if not _NAME.match(name):
        raise ValueError(f"invalid dataset name {name!r}: letters, digits, '.', '_' and '-' only")
    return f"datasets/{name}/{content_hash[:16]}"


def _check_contract(snapshot: Snapshot) -> None:
    for split in SPLITS:
        part: Split = getattr(snapshot, split)
        if part.x.dtype != np.float32 or part.y.dtype != np.int64:
            raise DataError(
                f"snapshot split {split!r} must hold float32 inputs and int64 labels,"
                f" got {part.x.dtype} and {part.y.dtype}"
            )


def _npz_bytes(snapshot: Snapshot) -> bytes:
    arrays = {}
    for split in SPLITS:
        part: Split = getattr(snapshot, split)
        arrays[f"x_{split}"], arrays[f"y_{split}"] = part.x, part.y
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def _manifest(snapshot: Snapshot, name: str, content_hash: str) -> dict[str, Any]:
    splits = {}
    for split in SPLITS:
        part: Split = getattr(snapshot, split)
        splits[split] = {
            "rows": len(part),
            "x_shape": list(part.x.shape),
            "x_dtype": str(part.x.dtype),
            "y_dtype": str(part.y.dtype),
        }
    return {
        "format": FORMAT_VERSION,
        "name": name,
        "sha256": content_hash,
        "example_shape": list(snapshot.train.x.shape[1:]),
        "splits": splits,
        "files": [SNAPSHOT_FILE, PROFILE_FILE, MANIFEST_FILE],
    }


def _put_once(store: ArtifactStore, key: str, data: bytes) -> bool:
    try:
        store.put_if_absent(key, data)
        return True
    except PreconditionFailed:
        return False


def save_snapshot(store: ArtifactStore, snapshot: Snapshot, name: str) -> str:
    """Store ``snapshot`` (with its profile) once; returns its key. Same data, same key, no rewrite."""
    _check_contract(snapshot)
    content_hash = snapshot.content_hash
    key = snapshot_key(name, content_hash)
    if store.exists(f"{key}/{MANIFEST_FILE}"):
        log.info("snapshot %s already stored: reusing it", store.uri(key))
        return key
    import json

    _put_once(store, f"{key}/{SNAPSHOT_FILE}", _npz_bytes(snapshot))
    profile = json.dumps(profile_snapshot(snapshot), indent=1, sort_keys=True).encode()
    _put_once(store, f"{key}/{PROFILE_FILE}", profile)
    manifest = json.dumps(_manifest(snapshot, name, content_hash), indent=2, sort_keys=True).encode()
    _put_once(store, f"{key}/{MANIFEST_FILE}", manifest)
    log.info("stored snapshot %s", store.uri(key))
    return key


def load_manifest(store: ArtifactStore, key: str) -> dict[str, Any]:
    return store.get_json(f"{key}/{MANIFEST_FILE}")


def load_profile(store: ArtifactStore, key: str) -> dict[str, Any]:
    return store.get_json(f"{key}/{PROFILE_FILE}")


def load_snapshot(store: ArtifactStore, key: str, *, verify: bool = True) -> Snapshot:
    """The snapshot stored at ``key``; with ``verify`` its content must still match its hash."""
    key = key.rstrip("/")
    data = store.get_bytes(f"{key}/{SNAPSHOT_FILE}")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            splits = {s: Split(archive[f"x_{s}"], archive[f"y_{s}"]) for s in SPLITS}
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"snapshot {store.uri(key)} is unreadable ({exc})") from None
    snapshot = Snapshot(**splits)
    if verify:
        expected = key.rsplit("/", 1)[-1]
        actual = snapshot.content_hash
        if not actual.startswith(expected):
            raise DataError(f"snapshot {store.uri(key)} is corrupt: content hash {actual[:16]} != {expected}")
    return snapshot
