"""The catalogue of bad inputs (issue 3, item 5): each is rejected with a clear, specific reason.

Validation cases start from a clean random 5,000-row partition of real Fashion-MNIST and break
one thing; drift is judged against a reference profile of the Fashion-MNIST training set, the
way a champion's training data would be. Unreadable inputs (corrupt files, non-numeric values,
length mismatches) are stopped earlier, at ingest, with a ``DataError``. And no false alarm:
20 random clean partitions all pass.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from slipway import cli
from slipway.config import DataSourceConfig
from slipway.data.dataset import DataError, Split
from slipway.data.sources import read_source
from slipway.errors import EXIT_BAD_INPUT, BadInputError
from slipway.validation.report import ValidationReport
from slipway.validation.validator import validate_split
from tests import data_fixtures as fx
from tests.data_fixtures import clean_partition, fashion_config

fashion, fashion_reference = fx.fashion, fx.fashion_reference

CONFIG = fashion_config()


@pytest.fixture(scope="module")
def clean(fashion: tuple[Split, Split]) -> Split:
    return clean_partition(fashion, seed=12345)


def check(split: Split, reference: dict[str, Any] | None) -> ValidationReport:
    return validate_split(split, CONFIG.data, CONFIG.validation, reference=reference)


def failed(report: ValidationReport) -> dict[str, str]:
    """Failed check id -> message; the report must be a failure."""
    assert not report.success, report.summary()
    return {o.check.id: o.message for o in report.failed}


def test_nan_values(clean: Split, fashion_reference: dict) -> None:
    x = clean.x.copy()
    x[:40, 10, 10] = np.nan
    x[7, :, :] = np.nan  # one image entirely missing: 39 + 784 NaN values
    reasons = failed(check(Split(x, clean.y), fashion_reference))
    assert set(reasons) == {"values.missing"}
    assert "40 of 5000 rows (0.80%) contain NaN, 823 NaN values in all" in reasons["values.missing"]


def test_values_outside_the_range_unnormalised_0_255(clean: Split, fashion_reference: dict) -> None:
    reasons = failed(check(Split(clean.x * 255, clean.y), fashion_reference))
    assert (
        "values.max (all values <= 1): 5000 of 5000 rows (100.00%) exceed it, largest value 255"
        in reasons.values()
    )
    assert "values.min" not in reasons


def test_negative_values(clean: Split, fashion_reference: dict) -> None:
    x = clean.x.copy()
    x[:3, 0, 0] = -0.5
    reasons = failed(check(Split(x, clean.y), fashion_reference))
    assert set(reasons) == {"values.min"}
    assert "3 of 5000 rows (0.06%) go below it, smallest value -0.5" in reasons["values.min"]


def test_wrong_image_shape(clean: Split, fashion_reference: dict) -> None:
    reasons = failed(check(Split(clean.x.reshape(-1, 14, 56), clean.y), fashion_reference))
    assert set(reasons) == {"schema.example_shape"}
    assert reasons["schema.example_shape"] == "schema.example_shape (example shape 28x28): observed 14x56"
    cropped = failed(check(Split(clean.x[:, :, :27], clean.y), fashion_reference))
    assert cropped["schema.feature_count"] == "schema.feature_count (784 features per example): observed 756"


def test_labels_outside_the_label_set(clean: Split, fashion_reference: dict) -> None:
    y = clean.y.copy()
    y[:25] = 10
    y[25:30] = -1
    reasons = failed(check(Split(clean.x, y), fashion_reference))
    assert "30 of 5000 rows (0.60%) have other labels: [-1, 10]" in reasons["labels.in_set"]


def test_empty_partition_at_validation(fashion_reference: dict) -> None:
    empty = Split(np.zeros((0, 28, 28), np.float32), np.zeros(0, np.int64))
    report = check(empty, fashion_reference)
    reasons = failed(report)
    assert reasons["rows.count"] == "rows.count (at least 100 rows): observed 0 rows"
    assert report.drift == [] and report.reference["status"] == "not compared: no rows"


def test_empty_partition_at_ingest(tmp_path: Path) -> None:
    path = tmp_path / "day=7.npz"
    buffer = io.BytesIO()
    np.savez(buffer, x=np.zeros((0, 28, 28), np.uint8), y=np.zeros(0, np.uint8))
    path.write_bytes(buffer.getvalue())
    code, err = run_cli_ingest(tmp_path, {"kind": "npz", "uri": str(tmp_path / "day={partition}.npz")}, "7")
    assert code == EXIT_BAD_INPUT
    assert f"partition '7' of {path} is empty: no examples to ingest" in err


def run_cli_ingest(tmp_path: Path, source: dict[str, Any], partition: str | None = None) -> tuple[int, str]:
    """``python -m slipway ingest`` in-process; returns (exit code, stderr)."""
    config = {
        "name": "catalogue",
        "model_name": "catalogue",
        "store_url": (tmp_path / "store").as_uri(),
        "data": {"source": source, "input_shape": [28, 28], "num_classes": 10},
        "metrics": {"textfile_dir": str(tmp_path / "metrics")},
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    args = ["ingest", "--config", str(path), "--run-id", "r1"] + (
        ["--partition", partition] if partition else []
    )
    import contextlib

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main(args)
    return code, err.getvalue()


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda data: data[: len(data) // 2], "train-images-idx3-ubyte.gz: gzip stream is truncated"),
        (lambda data: data[:10] + b"\xff" * 64 + data[74:], "train-images-idx3-ubyte.gz: corrupt gzip data"),
        (
            lambda data: gzip.compress(gzip.decompress(data)[:-100]),
            "train-images-idx3-ubyte.gz: truncated IDX data (header declares shape (50, 28, 28)",
        ),
    ],
    ids=["truncated-gzip", "corrupt-gzip", "truncated-idx"],
)
def test_truncated_or_corrupt_gzip_idx_file(tmp_path: Path, mangle: Any, reason: str) -> None:
    from slipway.data.idx import encode_idx

    folder = tmp_path / "idx"
    folder.mkdir()
    rng = np.random.default_rng(0)
    images = encode_idx(rng.integers(0, 256, (50, 28, 28), dtype=np.uint8), compress=True)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(mangle(images))
    labels = encode_idx((np.arange(50) % 10).astype(np.uint8), compress=True)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(labels)
    code, err = run_cli_ingest(tmp_path, {"kind": "idx", "uri": str(folder), "scale": 255})
    assert code == EXIT_BAD_INPUT
    assert reason in err and str(folder) in err
    assert "Traceback" not in err


def test_non_numeric_values_at_ingest(tmp_path: Path) -> None:
    path = tmp_path / "data.npz"
    x = np.full((4, 28, 28), "0.5", dtype=object)
    x[2, 3, 4] = "n/a"
    buffer = io.BytesIO()
    np.savez(buffer, x=x.astype(str), y=np.arange(4))
    path.write_bytes(buffer.getvalue())
    with pytest.raises(DataError) as info:
        read_source(DataSourceConfig(kind="npz", uri=str(path)))
    assert "non-numeric values in the inputs (dtype <U3), e.g. 'n/a' in example 2" in str(info.value)
    assert isinstance(info.value, BadInputError)


def test_non_numeric_values_at_validation(clean: Split, fashion_reference: dict) -> None:
    x = clean.x.astype(object)
    x[5, 0, 0] = "n/a"
    reasons = failed(check(Split(x, clean.y), fashion_reference))
    assert reasons["schema.x_dtype"] == "schema.x_dtype (inputs are float32): observed object"
    assert "1 of 5000 rows (0.02%) contain NaN" in reasons["values.missing"]


def test_single_class_partition(clean: Split, fashion_reference: dict) -> None:
    dresses = clean.y == 3
    reasons = failed(check(Split(clean.x[dresses], clean.y[dresses]), fashion_reference))
    assert "class 3 (Dress) holds 100.0%" in reasons["labels.max_class_share"]
    assert "holds 0.0%" in reasons["labels.min_class_share"]


def strong_label_shift(fashion: tuple[Split, Split]) -> Split:
    """5,000 rows, 60 % of them one class (T-shirt/top)."""
    train, _ = fashion
    rng = np.random.default_rng(3)
    tops = rng.choice(np.flatnonzero(train.y == 0), 3000, replace=False)
    rest = rng.choice(np.flatnonzero(train.y != 0), 2000, replace=False)
    idx = rng.permutation(np.concatenate([tops, rest]))
    return Split(train.x[idx], train.y[idx])


def test_strong_label_shift(fashion: tuple[Split, Split], fashion_reference: dict) -> None:
    reasons = failed(check(strong_label_shift(fashion), fashion_reference))
    assert "drift.label_tv" in reasons
    assert "observed 0.500; largest change: class 0 10.0% -> 60.0%" in reasons["drift.label_tv"]


@pytest.mark.parametrize(
    ("shift", "statistic"),
    [
        (lambda x: x * 0.7 + 0.2, "drift.mean_intensity_shift"),  # brighter, flatter
        (lambda x: np.clip(x * 1.3, 0, 1), "drift.std_intensity_shift"),  # more contrast
        (lambda x: x * 0.8, "drift.std_intensity_shift"),  # darker, less contrast
    ],
    ids=["brightness-0.7x+0.2", "contrast-1.3x-clipped", "dimmer-0.8x"],
)
def test_brightness_or_contrast_shift(
    clean: Split, fashion_reference: dict, shift: Any, statistic: str
) -> None:
    reasons = failed(check(Split(shift(clean.x).astype(np.float32), clean.y), fashion_reference))
    # Only drift checks fire (the structure maps see the change too); no contract check does.
    intensity = {f"drift.{s}" for s in ("mean_intensity_shift", "std_intensity_shift")}
    structural = {r for r in reasons if r.startswith(("drift.structure_", "drift.class_"))}
    assert set(reasons) - structural <= intensity | {"drift.mean_intensity_ks", "drift.std_intensity_ks"}
    assert statistic in reasons
    assert "vs reference" in reasons[statistic]


def test_many_duplicated_rows(clean: Split, fashion_reference: dict) -> None:
    x, y = clean.x.copy(), clean.y.copy()
    x[2500:], y[2500:] = x[:2500], y[:2500]
    reasons = failed(check(Split(x, y), fashion_reference))
    assert set(reasons) == {"rows.duplicates"}
    assert "50.0% of rows (2500 of 5000) repeat another row" in reasons["rows.duplicates"]


def test_images_and_labels_of_different_lengths(clean: Split, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="images and labels differ in length: 5000 inputs vs 4999 labels"):
        Split(clean.x, clean.y[:-1])
    path = tmp_path / "data.npz"
    buffer = io.BytesIO()
    np.savez(buffer, x=clean.x[:100], y=clean.y[:99])
    path.write_bytes(buffer.getvalue())
    with pytest.raises(DataError, match="differ in length: 100 inputs vs 99 labels"):
        read_source(DataSourceConfig(kind="npz", uri=str(path)))


def test_twenty_clean_partitions_pass(fashion: tuple[Split, Split], fashion_reference: dict) -> None:
    """No false alarm: 20 random clean 5,000-row partitions of real Fashion-MNIST all pass."""
    for seed in range(20):
        report = check(clean_partition(fashion, seed), fashion_reference)
        assert report.success, f"seed {seed}: {report.failure_message()}"
        assert len(report.drift) == 13  # 5 global + 8 structural, recorded although below threshold
