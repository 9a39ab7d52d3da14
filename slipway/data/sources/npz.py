"""``npz`` source: one NumPy ``.npz`` file with ``x``/``y`` or ``x_train``/``y_train`` (and
optionally ``x_test``/``y_test``, the source's own test split).

Loaded with ``allow_pickle=False``: a data file must never be able to run code, and an object
array is reported as non-numeric data instead.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np

from slipway.data.dataset import DataError
from slipway.data.sources.base import RawData, StoreFactory
from slipway.data.sources.location import locate


def _array(archive: np.lib.npyio.NpzFile, name: str, uri: str) -> np.ndarray:
    try:
        return archive[name]
    except ValueError as exc:  # object arrays without allow_pickle, malformed members
        if "allow_pickle" in str(exc):
            raise DataError(f"{uri}: array {name!r} holds Python objects, not numeric data") from None
        raise DataError(f"{uri}: array {name!r} is unreadable ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{uri}: array {name!r} is unreadable ({exc})") from None


def read(uri: str, store_factory: StoreFactory) -> RawData:
    data = locate(uri).read_bytes(store_factory)
    try:
        archive = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{uri}: not a readable .npz file ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{uri}: a single .npy array, not an .npz archive with x and y")
    with archive:
        names = set(archive.files)
        if {"x", "y"} <= names:
            return RawData(_array(archive, "x", uri), _array(archive, "y", uri), origin=uri)
        if {"x_train", "y_train"} <= names:
            test = {"x_test", "y_test"} & names
            if len(test) == 1:
                raise DataError(f"{uri}: {test.pop()} without its pair; a test split needs x_test and y_test")
            return RawData(
                _array(archive, "x_train", uri),
                _array(archive, "y_train", uri),
                origin=uri,
                test_x=_array(archive, "x_test", uri) if test else None,
                test_y=_array(archive, "y_test", uri) if test else None,
            )
    raise DataError(f"{uri}: expected arrays x and y (or x_train and y_train), found {sorted(names)}")
