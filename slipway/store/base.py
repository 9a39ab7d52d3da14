"""The artifact store interface: every step reads and writes through it.

Keys are ``/``-separated relative paths (``runs/fashion/r1/train/result.json``). Two conditional
writes make concurrent writers safe without a database:

* ``put_if_absent`` - create-only (S3 ``IfNoneMatch: *``); content-addressed artifacts and
  registry version numbers rely on it.
* ``compare_and_swap`` - replace only if the current object still has the ETag the caller read
  (S3 ``IfMatch``); aliases (``champion``) move with it.
"""

from __future__ import annotations

import builtins
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class StoreError(RuntimeError):
    """The store could not complete an operation (bad URL, permissions, network)."""


class ArtifactNotFound(StoreError, KeyError):
    """The key does not exist in the store."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "artifact not found"


class PreconditionFailed(StoreError):
    """A conditional write lost: the key already exists, or changed since it was read."""


class ArtifactStore(ABC):
    """A flat key/value store of bytes with conditional writes."""

    url: str

    @abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        """The object and its version tag, for a later ``compare_and_swap``."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> str:
        """Unconditional write; returns the new ETag."""

    @abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> str:
        """Create ``key``; raise ``PreconditionFailed`` if it already exists."""

    @abstractmethod
    def compare_and_swap(self, key: str, data: bytes, etag: str | None) -> str:
        """Replace ``key`` if its ETag is still ``etag`` (``None``: only if absent)."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under ``prefix`` (a folder-like prefix; trailing ``/`` optional), sorted."""

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def uri(self, key: str) -> str:
        """A URL a person or tool can open (``file:///...`` or ``s3://bucket/...``)."""

    # ---- conveniences built on the primitives; backends may override for speed

    def get_json(self, key: str) -> Any:
        return json.loads(self.get_bytes(key))

    def put_json(self, key: str, value: Any) -> str:
        return self.put_bytes(key, _dumps(value))

    def put_json_if_absent(self, key: str, value: Any) -> str:
        return self.put_if_absent(key, _dumps(value))

    def upload_file(self, local: str | Path, key: str) -> str:
        return self.put_bytes(key, Path(local).read_bytes())

    def download_file(self, key: str, local: str | Path) -> Path:
        path = Path(local)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.get_bytes(key))
        return path

    def upload_dir(self, local_dir: str | Path, prefix: str) -> builtins.list[str]:
        """Upload every file under ``local_dir`` to ``prefix/<relative path>``."""
        root = Path(local_dir)
        keys = []
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            key = f"{prefix.rstrip('/')}/{path.relative_to(root).as_posix()}"
            self.upload_file(path, key)
            keys.append(key)
        return keys

    def download_dir(self, prefix: str, local_dir: str | Path) -> Path:
        """Download every key under ``prefix`` into ``local_dir`` keeping relative paths."""
        root = Path(local_dir)
        prefix = prefix.rstrip("/") + "/"
        found = False
        for key in self.list(prefix):
            found = True
            self.download_file(key, root / key[len(prefix) :])
        if not found:
            raise ArtifactNotFound(f"no artifacts under {self.uri(prefix)}")
        return root

    def copy(self, src_key: str, dst_key: str) -> str:
        """Copy one object (unconditionally); returns the new ETag. S3 copies server-side."""
        return self.put_bytes(dst_key, self.get_bytes(src_key))

    def copy_prefix(self, src_prefix: str, dst_prefix: str) -> builtins.list[str]:
        """Copy every key under ``src_prefix`` to ``dst_prefix`` (same relative layout)."""
        src_prefix = check_prefix(src_prefix)
        dst_prefix = check_prefix(dst_prefix)
        copied = []
        for key in list(self.list(src_prefix)):  # listed first: dst may lie under src
            dst = dst_prefix + key[len(src_prefix) :]
            self.copy(key, dst)
            copied.append(dst)
        return copied


_BAD_KEY_CHARS = re.compile(r"[\x00-\x1f\\]")


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key, else raise ``StoreError`` naming it.

    Both backends enforce the same rule so that a key that works on a laptop (``file://``) also
    works on S3 and cannot climb out of the store root: no absolute paths, no empty, ``.`` or
    ``..`` segments, no backslashes or control characters.
    """
    if not isinstance(key, str) or not key:
        raise StoreError(f"invalid store key {key!r}: keys are non-empty strings")
    parts = key.split("/")
    if key.startswith("/") or any(part in ("", ".", "..") for part in parts) or _BAD_KEY_CHARS.search(key):
        raise StoreError(
            f"invalid store key {key!r}: keys are relative '/'-separated paths without empty,"
            " '.' or '..' segments, backslashes or control characters"
        )
    return key


def check_prefix(prefix: str) -> str:
    """Normalise a folder-like prefix to ``""`` (everything) or ``"a/b/"``; validated as a key."""
    stripped = prefix.rstrip("/")
    return check_key(stripped) + "/" if stripped else ""


def _dumps(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, default=str) + "\n").encode()
