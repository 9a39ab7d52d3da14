"""Reader (and writer) for MNIST-format IDX files, gzipped or not.

Why our own reader: the format is 20 lines of header logic, and a bad file must fail with a
``DataError`` naming the file and what is wrong (truncated gzip stream, bad magic, a header that
promises more bytes than follow) instead of a traceback from ``gzip``, ``struct`` or ``numpy``.
Compression is detected from the gzip magic bytes, never from the file name.

Layout: two zero bytes, a type code, the number of dimensions, one big-endian uint32 per
dimension, then the values in big-endian C order.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from slipway.data.dataset import DataError

GZIP_MAGIC = b"\x1f\x8b"

# IDX type code -> big-endian numpy dtype
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}


def decompress_if_gzip(data: bytes, name: str) -> bytes:
    """``data`` itself, or its gunzipped content when it starts with the gzip magic bytes."""
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except EOFError:
        raise DataError(f"{name}: gzip stream is truncated (the file ends before the data does)") from None
    except (OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{name}: corrupt gzip data ({exc})") from None


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode one IDX file (raw or gzipped bytes) into a native-byte-order array."""
    data = decompress_if_gzip(data, name)
    if len(data) < 4:
        raise DataError(f"{name}: not an IDX file (only {len(data)} bytes, the header needs 4)")
    if data[0] != 0 or data[1] != 0:
        raise DataError(f"{name}: not an IDX file (bad magic number 0x{data[:4].hex()}, expected 0000....)")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise DataError(f"{name}: unknown IDX type code 0x{code:02X} (expected one of {known})")
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(
            f"{name}: truncated IDX header ({ndim} dimensions need {header_len} bytes, got {len(data)})"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
    actual = len(data) - header_len
    if actual < expected:
        raise DataError(
            f"{name}: truncated IDX data (header declares shape {shape} = {expected} bytes of"
            f" {dtype.newbyteorder('=').name}, only {actual} bytes follow)"
        )
    if actual > expected:
        raise DataError(
            f"{name}: {actual - expected} unexpected trailing bytes after the IDX data of shape {shape}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=dtype.itemsize > 1)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file from a local path; a missing or unreadable file is a ``DataError`` too."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc.strerror or exc})") from None
    return parse_idx(data, str(path))


def encode_idx(array: np.ndarray, *, compress: bool = False) -> bytes:
    """The IDX bytes of ``array`` (for fixtures and exports); ``compress`` gzips them."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODES:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    code = _CODES[native]
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    return gzip.compress(payload, mtime=0) if compress else payload
