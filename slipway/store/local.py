"""``file://`` artifact store: a directory that behaves like an S3 bucket, for the embedded default.

Steps, Airflow workers and tests on one machine share it from several threads and processes, so
the conditional writes must hold across processes, not just threads:

* Every write goes to a temp file in ``<root>/.tmp/`` and is moved into place (``os.replace``, or
  ``os.link`` for create-only writes), so a reader never sees half a file.
* ``put_if_absent`` publishes with ``os.link``, which fails atomically if the target exists.
* ``compare_and_swap`` (and the unconditional writes and deletes it must not interleave with)
  hold an exclusive ``fcntl.flock`` on a lock file in ``<root>/.locks/``. Locks are striped over
  256 files by key hash: a bounded set of files, and two keys rarely share a stripe.
* The ETag is the hex MD5 of the content, computed on read (S3 uses the same for simple puts).

``.tmp`` and ``.locks`` are reserved top-level names: keys cannot use them and ``list`` skips them.
``flock`` is advisory and only as good as the file system's support (local disks: yes; some
network file systems: no), which is why production uses ``s3://``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

from slipway.store.base import (
    ArtifactNotFound,
    ArtifactStore,
    PreconditionFailed,
    StoreError,
    check_key,
    check_prefix,
)

_TMP = ".tmp"
_LOCKS = ".locks"
_RESERVED = {_TMP, _LOCKS}
_LOCK_STRIPES = 256


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class LocalStore(ArtifactStore):
    """An artifact store rooted at a local directory (created if missing)."""

    def __init__(self, url: str) -> None:
        self.root = _root_from_url(url)
        self.url = self.root.as_uri()
        try:
            (self.root / _TMP).mkdir(parents=True, exist_ok=True)
            (self.root / _LOCKS).mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create store directory {self.root}: {exc}") from exc

    def __repr__(self) -> str:
        return f"LocalStore({self.url!r})"

    # ---- paths, temp files and locks

    def _path(self, key: str) -> Path:
        check_key(key)
        if key.split("/", 1)[0] in _RESERVED:
            raise StoreError(f"invalid store key {key!r}: {sorted(_RESERVED)} are reserved by the file store")
        return self.root / key

    def _write_temp(self, data: bytes) -> Path:
        fd, name = tempfile.mkstemp(dir=self.root / _TMP, prefix="w-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name)

    @contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        stripe = int(_md5(key.encode())[:4], 16) % _LOCK_STRIPES
        fd = os.open(self.root / _LOCKS / f"{stripe:03d}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def _publish(self, tmp: Path, path: Path) -> None:
        with self._os_errors(path.relative_to(self.root).as_posix()):
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, path)

    @contextmanager
    def _os_errors(self, key: str) -> Iterator[None]:
        """A key whose parent is a file (``a`` then ``a/b``) cannot exist on disk: say so clearly."""
        try:
            yield
        except OSError as exc:
            raise StoreError(f"cannot write {self.uri(key)}: {exc.strerror or exc}") from exc

    # ---- primitives

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ArtifactNotFound(f"no artifact at {self.uri(key)}") from None

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        data = self.get_bytes(key)
        return data, _md5(data)

    def put_bytes(self, key: str, data: bytes) -> str:
        path = self._path(key)
        tmp = self._write_temp(data)
        try:
            with self._locked(key):
                self._publish(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return _md5(data)

    def put_if_absent(self, key: str, data: bytes) -> str:
        path = self._path(key)
        tmp = self._write_temp(data)
        try:
            with self._os_errors(key):
                path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    raise PreconditionFailed(f"{self.uri(key)} already exists") from None
        finally:
            tmp.unlink(missing_ok=True)
        return _md5(data)

    def compare_and_swap(self, key: str, data: bytes, etag: str | None) -> str:
        path = self._path(key)
        if etag is None:
            return self.put_if_absent(key, data)
        tmp = self._write_temp(data)
        try:
            with self._locked(key):
                try:
                    current = _md5(path.read_bytes())
                except (FileNotFoundError, NotADirectoryError):
                    raise PreconditionFailed(
                        f"{self.uri(key)} no longer exists (expected ETag {etag})"
                    ) from None
                if current != etag.strip('"'):
                    raise PreconditionFailed(f"{self.uri(key)} changed: ETag {current}, expected {etag}")
                self._publish(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return _md5(data)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> Iterator[str]:
        prefix = check_prefix(prefix)
        start = self._path(prefix.rstrip("/")) if prefix else self.root
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(start):
            if Path(dirpath) == self.root:
                dirnames[:] = [d for d in dirnames if d not in _RESERVED]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            keys.extend(name if rel == "." else f"{rel}/{name}" for name in filenames)
        return iter(sorted(keys))

    def delete(self, key: str) -> None:
        """Remove ``key``; deleting a missing key is not an error (as on S3, so retries are safe)."""
        path = self._path(key)
        with self._locked(key):
            path.unlink(missing_ok=True)

    def uri(self, key: str) -> str:
        return (self.root / key).as_uri() + ("/" if key.endswith("/") else "")

    # ---- faster paths for big files

    def upload_file(self, local: str | Path, key: str) -> str:
        path = self._path(key)
        fd, name = tempfile.mkstemp(dir=self.root / _TMP, prefix="u-")
        tmp = Path(name)
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with open(local, "rb") as src, os.fdopen(fd, "wb") as dst:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    dst.write(chunk)
            with self._locked(key):
                self._publish(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return digest.hexdigest()

    def copy(self, src_key: str, dst_key: str) -> str:
        src = self._path(src_key)
        if not src.is_file():
            raise ArtifactNotFound(f"no artifact at {self.uri(src_key)}")
        return self.upload_file(src, dst_key)

    def download_file(self, key: str, local: str | Path) -> Path:
        src = self._path(key)
        dst = Path(local)
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(src, dst)
        except (FileNotFoundError, IsADirectoryError):
            if not src.is_file():
                raise ArtifactNotFound(f"no artifact at {self.uri(key)}") from None
            raise
        return dst


def _root_from_url(url: str) -> Path:
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise StoreError(f"invalid file store URL {url!r}: expected file:///absolute/path")
    path = Path(unquote(parts.path))
    if not path.is_absolute() or str(path) == "/":
        raise StoreError(f"invalid file store URL {url!r}: the path must be absolute and not '/'")
    return Path(os.path.normpath(path))
