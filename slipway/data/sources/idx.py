"""``idx`` source: a folder of MNIST-format files (``train-images-*``, ``train-labels-*``,
``t10k-images-*``, ``t10k-labels-*``), gzipped or not, local or on the store.

The ``t10k`` pair is the source's own test split: keeping it means every model of a pipeline is
scored on the same published test set. It is optional; without it the splitter carves a test
split from the training files.
"""

from __future__ import annotations

from slipway.data.dataset import DataError
from slipway.data.idx import parse_idx
from slipway.data.sources.base import RawData, StoreFactory
from slipway.data.sources.location import Location, locate

_PARTS = ("train-images", "train-labels", "t10k-images", "t10k-labels")


def _find(files: dict[str, Location], stem: str, uri: str) -> Location | None:
    matches = [loc for name, loc in files.items() if name.startswith(stem)]
    if len(matches) > 1:
        names = ", ".join(sorted(n for n in files if n.startswith(stem)))
        raise DataError(f"{uri}: several files match {stem}-*: {names}")
    return matches[0] if matches else None


def read(uri: str, store_factory: StoreFactory) -> RawData:
    files = locate(uri).children(store_factory)
    found = {stem: _find(files, stem, uri) for stem in _PARTS}
    if found["train-images"] is None or found["train-labels"] is None:
        raise DataError(
            f"{uri}: an idx source needs train-images-* and train-labels-* files; found"
            f" {sorted(files) or 'nothing'}"
        )
    if (found["t10k-images"] is None) != (found["t10k-labels"] is None):
        raise DataError(f"{uri}: the test split needs both t10k-images-* and t10k-labels-*")
    arrays = {
        stem: parse_idx(loc.read_bytes(store_factory), loc.uri)
        for stem, loc in found.items()
        if loc is not None
    }
    return RawData(
        x=arrays["train-images"],
        y=arrays["train-labels"],
        origin=uri,
        test_x=arrays.get("t10k-images"),
        test_y=arrays.get("t10k-labels"),
    )
