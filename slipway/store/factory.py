"""``open_store(url)``: the one place that maps a store URL's scheme to a backend.

Backends register by scheme in ``_BACKENDS`` and are imported lazily, so a ``file://`` user never
pays for importing boto3 and nothing else in the code base switches on the backend.
"""

from __future__ import annotations

import importlib
from urllib.parse import urlsplit

from slipway.store.base import ArtifactStore, StoreError

# scheme -> "module:class"
_BACKENDS: dict[str, str] = {
    "file": "slipway.store.local:LocalStore",
    "s3": "slipway.store.s3:S3Store",
}


def open_store(url: str) -> ArtifactStore:
    """Open the artifact store at ``url`` (``file:///abs/path`` or ``s3://bucket[/prefix]``)."""
    if not isinstance(url, str) or "://" not in url:
        raise StoreError(f"invalid store URL {url!r}: expected file:///abs/path or s3://bucket[/prefix]")
    scheme = urlsplit(url).scheme.lower()
    target = _BACKENDS.get(scheme)
    if target is None:
        supported = ", ".join(f"{s}://" for s in sorted(_BACKENDS))
        raise StoreError(f"unsupported store URL {url!r}: scheme {scheme!r} is not one of {supported}")
    module_name, class_name = target.split(":")
    backend = getattr(importlib.import_module(module_name), class_name)
    return backend(url)
