"""Fetch a registered model version into a local folder, verified against its recorded checksums.

The server never loads from the store directly: the version's files are downloaded into
``<cache_dir>/<model>/<version>/`` and every file's SHA-256 is compared with the record written at
registration (``slipway.registry.verify_files``). A missing, altered or unexpected file refuses the
whole version with a ``ModelRefused`` naming the files, and nothing is served. A cached copy is
re-verified from disk each time, so a file changed in the cache is caught too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from slipway.errors import BadInputError
from slipway.registry import ModelRegistry, ModelVersion, RegistryError, file_digest, verify_files
from slipway.store import ArtifactStore


class ModelRefused(BadInputError):
    """The model version cannot be served: unknown, unverifiable, tampered with, or unsafe."""


@dataclass(frozen=True)
class LocalModel:
    """A verified copy of one version, and the aliases (TF Serving labels) pointing at it."""

    name: str
    version: int
    path: Path
    labels: tuple[str, ...]
    metadata: dict


def resolve_version(registry: ModelRegistry, ref: str | int) -> int:
    """A version number from ``ref``: a number, ``latest``, or an alias (``champion``, ``candidate``)."""
    text = str(ref).strip()
    if text.isdigit():
        return int(text)
    if text == "latest":
        latest = registry.latest_version()
        if latest is None:
            raise ModelRefused(f"model {registry.model!r} has no registered versions in {registry.base_uri}")
        return latest
    try:
        number = registry.get_alias(text)
    except RegistryError as exc:
        raise ModelRefused(str(exc)) from None
    if number is None:
        known = sorted(registry.aliases())
        raise ModelRefused(
            f"model {registry.model!r} has no alias {text!r} (aliases: {known or 'none'}); give a version"
            " number, 'latest' or an alias"
        )
    return number


def fetch_verified(store: ArtifactStore, model: str, ref: str | int, cache_dir: str | Path) -> LocalModel:
    """Resolve ``ref``, download the version (if not cached) and verify every file."""
    registry = ModelRegistry(store, model)
    number = resolve_version(registry, ref)
    try:
        version = registry.get_version(number)
        aliases = registry.aliases()
    except RegistryError as exc:
        raise ModelRefused(str(exc)) from None
    if not version.checksums:
        raise ModelRefused(
            f"model {model!r} version {number} was registered without checksums, so it cannot be"
            " verified; register it again to serve it"
        )
    target = Path(cache_dir) / model / str(number)
    if target.exists():
        try:
            verify_files(version, _digests_on_disk(target))
        except RegistryError as exc:
            raise ModelRefused(f"cached copy {target}: {exc}") from None
    else:
        _download(store, version, target)
    labels = tuple(sorted(alias for alias, v in aliases.items() if v == number))
    return LocalModel(model, number, target, labels, dict(version.metadata))


def _download(store: ArtifactStore, version: ModelVersion, target: Path) -> None:
    """Download into a temporary sibling, verify, then rename: the cache holds only verified copies."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{version.number}-"))
    try:
        present: dict[str, bytes | str] = {}
        prefix = version.prefix + "/"
        for key in store.list(prefix):
            rel = key[len(prefix) :]
            data = store.get_bytes(key)
            present[rel] = file_digest(data)
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        try:
            verify_files(version, present)
        except RegistryError as exc:
            raise ModelRefused(str(exc)) from None
        try:
            os.replace(staging, target)
        except OSError:
            if not target.exists():  # another server process finished the same download first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _digests_on_disk(root: Path) -> dict[str, bytes | str]:
    return {
        path.relative_to(root).as_posix(): file_digest(path.read_bytes())
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
