"""IDX reader: every dtype, gzip detected by magic bytes, and clear errors for broken files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from slipway.data.dataset import DataError
from slipway.data.idx import encode_idx, parse_idx, read_idx
from tests.data_fixtures import FASHION_DIR


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_every_dtype(dtype: str, compress: bool) -> None:
    array = (np.arange(2 * 3 * 4).reshape(2, 3, 4) - 7).astype(dtype)
    decoded = parse_idx(encode_idx(array, compress=compress))
    assert decoded.dtype == array.dtype
    np.testing.assert_array_equal(decoded, array)


def test_compression_is_detected_by_content_not_name(tmp_path: Path) -> None:
    labels = np.array([3, 1, 4], dtype=np.uint8)
    gz_named_raw = tmp_path / "labels.idx"  # gzipped content, no .gz suffix
    gz_named_raw.write_bytes(encode_idx(labels, compress=True))
    raw_named_gz = tmp_path / "labels.gz"  # raw content, .gz suffix
    raw_named_gz.write_bytes(encode_idx(labels))
    np.testing.assert_array_equal(read_idx(gz_named_raw), labels)
    np.testing.assert_array_equal(read_idx(raw_named_gz), labels)


def test_reads_real_fashion_mnist_labels() -> None:
    path = FASHION_DIR / "t10k-labels-idx1-ubyte.gz"
    if not path.exists():
        pytest.skip(f"Fashion-MNIST not found in {FASHION_DIR} (SLIPWAY_FASHION_MNIST_DIR)")
    labels = read_idx(path)
    assert labels.shape == (10_000,) and labels.dtype == np.uint8
    assert set(np.unique(labels)) == set(range(10))


IMAGES = np.arange(5 * 4 * 4, dtype=np.uint8).reshape(5, 4, 4)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (encode_idx(IMAGES, compress=True)[:-30], "gzip stream is truncated"),
        (b"\x1f\x8b" + b"\x00" * 40, "corrupt gzip data"),
        (encode_idx(IMAGES)[:-7], "truncated IDX data (header declares shape (5, 4, 4) = 80 bytes of uint8"),
        (gzip.compress(encode_idx(IMAGES)[:-1]), "only 79 bytes follow"),
        (encode_idx(IMAGES) + b"xx", "2 unexpected trailing bytes"),
        (b"\x12\x34\x08\x01" + b"\x00" * 8, "bad magic number 0x12340801"),
        (b"\x00\x00\x07\x01" + b"\x00" * 8, "unknown IDX type code 0x07"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header (3 dimensions need 16 bytes, got 6)"),
        (b"\x00\x00", "not an IDX file (only 2 bytes"),
        (b"\x00\x00\x08\x00", "declares 0 dimensions"),
    ],
    ids=[
        "truncated-gzip",
        "corrupt-gzip",
        "truncated-data",
        "truncated-data-in-gzip",
        "trailing-bytes",
        "bad-magic",
        "bad-type",
        "short-header",
        "tiny-file",
        "zero-dims",
    ],
)
def test_broken_files_name_the_file_and_the_problem(tmp_path: Path, data: bytes, reason: str) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(data)
    with pytest.raises(DataError) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert reason in str(info.value)
    # no chained traceback from gzip, struct or numpy behind the message
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read IDX file"):
        read_idx(tmp_path / "nope.gz")
