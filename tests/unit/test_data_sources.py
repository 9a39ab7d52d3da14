"""Sources: digits, npz and parquet (local, file:// and store-backed), idx folders; the shared
rules (partition in the uri, max_examples, scaling, numeric checks, lengths)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from slipway.config import DataSourceConfig
from slipway.data.dataset import DataError
from slipway.data.idx import encode_idx
from slipway.data.sources import read_source
from slipway.store import ArtifactStore, open_store
from tests import data_fixtures as fx

# pytest fixture shared with the other data tests, bound here so pytest finds it
local_store = fx.local_store


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def test_digits_is_bundled_and_scaled() -> None:
    raw = read_source(DataSourceConfig(kind="digits", scale=16))
    assert raw.x.shape == (1797, 8, 8) and raw.x.dtype == np.float32
    assert raw.x.min() == 0.0 and raw.x.max() == 1.0
    assert raw.y.dtype == np.int64 and set(np.unique(raw.y)) == set(range(10))
    assert not raw.has_test


def test_max_examples_caps_each_split() -> None:
    raw = read_source(DataSourceConfig(kind="digits", max_examples=50))
    assert len(raw.x) == len(raw.y) == 50


def test_npz_with_own_test_split_on_a_file_url(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "part=2024-01" / "data.npz"
    path.parent.mkdir()
    path.write_bytes(
        npz_bytes(
            x_train=rng.integers(0, 256, (30, 4, 4), dtype=np.uint8),
            y_train=np.arange(30) % 3,
            x_test=rng.integers(0, 256, (10, 4, 4), dtype=np.uint8),
            y_test=np.arange(10) % 3,
        )
    )
    uri = (tmp_path / "part={partition}" / "data.npz").as_uri().replace("%7B", "{").replace("%7D", "}")
    raw = read_source(DataSourceConfig(kind="npz", uri=uri, scale=255, max_examples=20), "2024-01")
    assert raw.has_test and raw.x.shape == (20, 4, 4) and raw.test_x.shape == (10, 4, 4)
    assert raw.x.dtype == np.float32 and raw.x.max() <= 1.0


def test_npz_on_the_store_through_the_store_factory(tmp_path: Path) -> None:
    """``s3://bucket/key`` goes through the store factory rooted at the bucket."""
    bucket = open_store((tmp_path / "bucket").as_uri())
    bucket.put_bytes("raw/day=1/data.npz", npz_bytes(x=np.ones((5, 3)), y=np.array([0, 1, 0, 1, 0])))
    opened: list[str] = []

    def factory(url: str) -> ArtifactStore:
        opened.append(url)
        return bucket

    cfg = DataSourceConfig(kind="npz", uri="s3://my-bucket/raw/day={partition}/data.npz")
    raw = read_source(cfg, "1", store_factory=factory)
    assert opened == ["s3://my-bucket"]
    assert raw.x.shape == (5, 3)
    with pytest.raises(DataError, match=r"s3://my-bucket/raw/day=2/data.npz: no such object"):
        read_source(cfg, "2", store_factory=factory)


@pytest.mark.parametrize(
    ("arrays", "reason"),
    [
        ({"x": np.ones((4, 2)), "y": np.zeros(3)}, "images and labels differ in length: 4 inputs vs 3"),
        ({"x": np.array([["1", "a"], ["2", "3"]]), "y": np.zeros(2)}, "non-numeric values in the inputs"),
        ({"x": np.ones((2, 2)), "y": np.array(["cat", "dog"])}, "non-numeric labels (dtype <U3), e.g. 'cat'"),
        ({"x": np.ones((2, 2)), "y": np.array([0.0, 1.5])}, "labels must be whole class indices"),
        ({"x": np.ones((2, 2)), "y": np.eye(2)}, "one class index per example (1-D), got shape (2, 2)"),
        ({"x": np.ones((2, 2), dtype=object), "y": np.zeros(2)}, "holds Python objects, not numeric data"),
        ({"features": np.ones((2, 2))}, "expected arrays x and y (or x_train and y_train), found ['feat"),
        ({"x_train": np.ones((2, 2)), "y_train": np.zeros(2), "x_test": np.ones((1, 2))}, "x_test without"),
    ],
    ids=["lengths", "strings", "string-labels", "fractions", "one-hot", "objects", "keys", "half-test"],
)
def test_bad_npz_is_a_clear_data_error(tmp_path: Path, arrays: dict, reason: str) -> None:
    path = tmp_path / "data.npz"
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=True, **arrays)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(DataError) as info:
        read_source(DataSourceConfig(kind="npz", uri=str(path)))
    assert reason in str(info.value) and str(path) in str(info.value)


def test_corrupt_npz(tmp_path: Path) -> None:
    path = tmp_path / "data.npz"
    path.write_bytes(npz_bytes(x=np.ones((50, 50)), y=np.zeros(50))[:-100])
    with pytest.raises(DataError, match=r"not a readable \.npz file|unreadable"):
        read_source(DataSourceConfig(kind="npz", uri=str(path)))


def test_parquet_feature_columns_on_a_file_store(local_store: ArtifactStore) -> None:
    table = pa.table({"label": [0, 1, 2, 1], "p0": [0, 51, 102, 255], "p1": [1.0, 2.0, None, 4.0]})
    local_store.put_bytes("raw/part=a/data.parquet", parquet_bytes(table))
    uri = local_store.uri("raw/part={partition}/data.parquet").replace("%7B", "{").replace("%7D", "}")
    raw = read_source(DataSourceConfig(kind="parquet", uri=uri, scale=255), "a")
    assert raw.x.shape == (4, 2) and raw.x.dtype == np.float32
    np.testing.assert_allclose(raw.x[:, 0], [0, 0.2, 0.4, 1.0])
    assert np.isnan(raw.x[2, 1])  # a missing feature is NaN, left for validation to report
    np.testing.assert_array_equal(raw.y, [0, 1, 2, 1])


def test_parquet_image_column(tmp_path: Path) -> None:
    images = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    path = tmp_path / "data.parquet"
    path.write_bytes(parquet_bytes(pa.table({"image": images, "label": [2, 0, 1]})))
    raw = read_source(DataSourceConfig(kind="parquet", uri=str(path)))
    np.testing.assert_array_equal(raw.x, np.array(images, dtype=np.float32))


@pytest.mark.parametrize(
    ("table", "reason"),
    [
        (pa.table({"label": [0, 1], "colour": ["red", "blue"]}), "non-numeric feature column(s) 'colour'"),
        (pa.table({"p0": [0.0, 1.0]}), "no 'label' column"),
        (pa.table({"label": [0, None], "p0": [0.0, 1.0]}), "column 'label' has 1 missing values"),
        (pa.table({"label": ["a", "b"], "p0": [0.0, 1.0]}), "non-numeric labels"),
        (pa.table({"label": [0, 1], "image": [[1, 2], [3]]}), "'image' differ in length: [1, 2]"),
        (pa.table({"label": [0, 1], "image": [["a"], ["b"]]}), "column 'image' holds string values"),
    ],
    ids=["string-feature", "no-label", "null-label", "string-label", "ragged-images", "string-images"],
)
def test_bad_parquet_is_a_clear_data_error(tmp_path: Path, table: pa.Table, reason: str) -> None:
    path = tmp_path / "data.parquet"
    path.write_bytes(parquet_bytes(table))
    with pytest.raises(DataError) as info:
        read_source(DataSourceConfig(kind="parquet", uri=str(path)))
    assert reason in str(info.value)


def test_not_a_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    path.write_bytes(b"PAR1 certainly not")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        read_source(DataSourceConfig(kind="parquet", uri=str(path)))


def write_idx_folder(folder: Path, n: int = 12, test: bool = True, compress: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    suffix = ".gz" if compress else ""
    parts = {"train": n} | ({"t10k": n // 2} if test else {})
    for prefix, count in parts.items():
        images = rng.integers(0, 256, (count, 6, 6), dtype=np.uint8)
        (folder / f"{prefix}-images-idx3-ubyte{suffix}").write_bytes(encode_idx(images, compress=compress))
        labels = (np.arange(count) % 3).astype(np.uint8)
        (folder / f"{prefix}-labels-idx1-ubyte{suffix}").write_bytes(encode_idx(labels, compress=compress))


@pytest.mark.parametrize("compress", [True, False])
def test_idx_folder_keeps_its_test_split(tmp_path: Path, compress: bool) -> None:
    write_idx_folder(tmp_path / "mnist", compress=compress)
    raw = read_source(DataSourceConfig(kind="idx", uri=str(tmp_path / "mnist"), scale=255))
    assert raw.x.shape == (12, 6, 6) and raw.test_x.shape == (6, 6, 6)


def test_idx_folder_on_the_store(tmp_path: Path) -> None:
    write_idx_folder(tmp_path / "src", test=False)
    bucket = open_store((tmp_path / "bucket").as_uri())
    bucket.upload_dir(tmp_path / "src", "mnist/v1")
    raw = read_source(DataSourceConfig(kind="idx", uri="s3://b/mnist/{partition}"), "v1", lambda url: bucket)
    assert raw.x.shape == (12, 6, 6) and not raw.has_test


def test_idx_folder_problems(tmp_path: Path) -> None:
    write_idx_folder(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="the test split needs both"):
        read_source(DataSourceConfig(kind="idx", uri=str(tmp_path / "mnist")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="needs train-images-\\* and train-labels-\\* files; found nothing"):
        read_source(DataSourceConfig(kind="idx", uri=str(tmp_path / "empty")))
    with pytest.raises(DataError, match="not a folder"):
        read_source(DataSourceConfig(kind="idx", uri=str(tmp_path / "missing")))


def test_idx_images_and_labels_of_different_lengths(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    write_idx_folder(folder, test=False)
    eleven = encode_idx(np.zeros(11, dtype=np.uint8), compress=True)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(eleven)
    with pytest.raises(DataError, match="images and labels differ in length: 12 inputs vs 11 labels"):
        read_source(DataSourceConfig(kind="idx", uri=str(folder)))


def test_partition_placeholder_needs_a_safe_partition() -> None:
    cfg = DataSourceConfig(kind="npz", uri="/data/{partition}/x.npz")
    with pytest.raises(DataError, match="needs a partition"):
        read_source(cfg, None)
    with pytest.raises(DataError, match=r"invalid partition '\.\./etc'"):
        read_source(cfg, "../etc")


def test_unsupported_uri_scheme() -> None:
    with pytest.raises(DataError, match=r"unsupported data uri 'http://x/data\.npz'"):
        read_source(DataSourceConfig(kind="npz", uri="http://x/data.npz"))


def test_partition_needs_a_placeholder_in_the_uri() -> None:
    from slipway.data.sources import resolve_uri

    assert resolve_uri("s3://b/data/{partition}.npz", "2026-11") == "s3://b/data/2026-11.npz"
    with pytest.raises(DataError, match=r"has no \{partition\}"):
        resolve_uri("/usr/share/datasets/fashion-mnist", "2026-11")
    with pytest.raises(DataError, match="needs a partition"):
        resolve_uri("s3://b/data/{partition}.npz", None)
    with pytest.raises(DataError, match="no absolute paths"):
        resolve_uri("/data/{partition}.npz", "../etc")
