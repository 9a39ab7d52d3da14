"""Data sources: one module per ``data.source.kind``, chosen here and nowhere else.

``read_source`` fills ``{partition}`` into the uri, calls the reader and applies the rules every
source shares: ``max_examples`` caps each split, inputs become float32 divided by ``scale``,
labels int64 class indices, and images and labels must agree in length. Anything else is a
``DataError`` naming the source.
"""

from __future__ import annotations

import importlib

from slipway.config import DataSourceConfig
from slipway.data.convert import to_features, to_labels
from slipway.data.dataset import DataError
from slipway.data.sources.base import RawData, StoreFactory
from slipway.store.base import ArtifactStore

__all__ = ["READERS", "RawData", "StoreFactory", "read_source", "resolve_uri"]

# kind -> module with ``read(uri, store_factory) -> RawData``; imported lazily.
READERS: dict[str, str] = {
    "idx": "slipway.data.sources.idx",
    "digits": "slipway.data.sources.digits",
    "npz": "slipway.data.sources.npz",
    "parquet": "slipway.data.sources.parquet",
}


def resolve_uri(uri: str | None, partition: str | None) -> str | None:
    """``uri`` with ``{partition}`` filled in; a partition may not climb out of the uri's folder."""
    if uri is None or "{partition}" not in uri:
        if partition:
            # Silently reading the whole source instead of the asked-for partition would be worse.
            raise DataError(
                f"partition {partition!r} was given but the data source uri {uri!r} has no {{partition}}"
            )
        return uri
    if not partition:
        raise DataError(f"data source uri {uri!r} needs a partition (--partition) and none was given")
    if ".." in partition.split("/") or partition.startswith("/"):
        raise DataError(f"invalid partition {partition!r}: no absolute paths or '..'")
    return uri.replace("{partition}", partition)


def _default_store_factory(url: str) -> ArtifactStore:
    from slipway.store import open_store

    return open_store(url)


def read_source(
    cfg: DataSourceConfig, partition: str | None = None, store_factory: StoreFactory | None = None
) -> RawData:
    """Read one partition of the configured source into float32 inputs and int64 labels."""
    uri = resolve_uri(cfg.uri, partition)
    reader = importlib.import_module(READERS[cfg.kind])
    raw: RawData = reader.read(uri, store_factory or _default_store_factory)
    cap = cfg.max_examples
    origin = raw.origin
    x, y = to_features(raw.x[:cap], cfg.scale, origin), to_labels(raw.y[:cap], origin)
    own_test = raw.own_test()
    if own_test is None:
        return RawData(x, y, origin=origin)
    test_origin = f"{origin} (test split)"
    return RawData(
        x,
        y,
        origin=origin,
        test_x=to_features(own_test[0][:cap], cfg.scale, test_origin),
        test_y=to_labels(own_test[1][:cap], test_origin),
    )
