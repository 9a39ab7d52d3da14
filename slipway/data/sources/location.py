"""Where a source's bytes live: a local path, a ``file://`` URL, or an object on the artifact store.

``file://`` URLs are read as local paths (opening a ``LocalStore`` on a data folder would create
its bookkeeping folders there); ``s3://bucket/key`` is read through the store factory with the
store rooted at the bucket, so credentials and endpoints come from the same place as the
artifact store's. A missing object is a ``DataError`` (no retry brings a partition into being);
a store outage stays a ``StoreError`` so the step is retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from slipway.data.dataset import DataError
from slipway.data.sources.base import StoreFactory
from slipway.store.base import ArtifactNotFound, ArtifactStore


@dataclass(frozen=True)
class Location:
    """One file or folder: ``path`` when local, else ``store_url`` + ``key``."""

    uri: str
    path: Path | None = None
    store_url: str | None = None
    key: str = ""

    def _store(self, store_factory: StoreFactory) -> ArtifactStore:
        if self.store_url is None:  # neither local nor on a store: a Location built by hand, wrongly
            raise DataError(f"{self.uri}: neither a local path nor an object on a store")
        return store_factory(self.store_url)

    def read_bytes(self, store_factory: StoreFactory) -> bytes:
        if self.path is not None:
            try:
                return self.path.read_bytes()
            except OSError as exc:
                raise DataError(f"{self.uri}: cannot read ({exc.strerror or exc})") from None
        try:
            return self._store(store_factory).get_bytes(self.key)
        except ArtifactNotFound:
            raise DataError(f"{self.uri}: no such object in the store") from None

    def children(self, store_factory: StoreFactory) -> dict[str, Location]:
        """Files directly inside this folder, by name."""
        if self.path is not None:
            if not self.path.is_dir():
                raise DataError(f"{self.uri}: not a folder")
            return {p.name: Location(p.as_uri(), path=p) for p in sorted(self.path.iterdir()) if p.is_file()}
        prefix = f"{self.key.rstrip('/')}/" if self.key else ""
        found = {}
        for key in self._store(store_factory).list(prefix):
            name = key[len(prefix) :]
            if name and "/" not in name:
                found[name] = Location(f"{self.store_url}/{key}", store_url=self.store_url, key=key)
        return found


def locate(uri: str) -> Location:
    """Parse a local path, ``file://`` URL or ``s3://bucket/key`` into a ``Location``."""
    if "://" not in uri:
        return Location(uri, path=Path(uri))
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "file":
        return Location(uri, path=Path(unquote(parts.path)))
    if scheme == "s3":
        if not parts.netloc:
            raise DataError(f"invalid data uri {uri!r}: expected s3://bucket/key")
        return Location(uri, store_url=f"s3://{parts.netloc}", key=unquote(parts.path).lstrip("/"))
    raise DataError(f"unsupported data uri {uri!r}: use a local path, file:// or s3://")
