"""The validate step end to end on a ``file://`` store with the digits pipeline: report, Data
Docs, metrics, the first reference, drift on later runs, and bad data stopped without touching
the reference."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from slipway.config import PipelineConfig
from slipway.metrics import MetricsBatch
from slipway.steps import ingest, validate
from slipway.steps.context import RunContext
from slipway.validation import DataValidationFailed, load_reference, reference_key
from tests.data_fixtures import pipeline_config


def run_steps(config: PipelineConfig, run_id: str, partition: str | None = None) -> tuple[dict, MetricsBatch]:
    ctx = RunContext.create(config, run_id, partition=partition)
    ingest.run(ctx, MetricsBatch(config.name, "ingest"))
    batch = MetricsBatch(config.name, "validate")
    return validate.run(ctx, batch).dump(), batch


def metric(batch: MetricsBatch, name: str, **labels: str) -> float:
    found = [
        s.value for s in batch.samples if s.name == name and all(s.labels[k] == v for k, v in labels.items())
    ]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def test_clean_digits_pass_with_report_docs_metrics_and_first_reference(tmp_path: Path) -> None:
    config = pipeline_config(tmp_path / "store")
    result, batch = run_steps(config, "run-1")
    ctx = RunContext.create(config, "run-1")

    assert result["success"] and result["failed"] == [] and result["rows"] == 1797
    assert ctx.validate_result().dump() == result
    ids = [e["id"] for e in result["expectations"]]
    assert {
        "rows.count",
        "values.missing",
        "values.min",
        "values.max",
        "labels.in_set",
        "rows.duplicates",
    } <= set(ids)
    assert {
        "schema.feature_count",
        "schema.example_shape",
        "schema.x_dtype",
        "labels.min_class_share",
    } <= set(ids)
    for entry in result["expectations"]:
        assert {"expectation", "threshold", "observed", "success"} <= set(entry)
    # first run: no drift checks, recorded as such; the accepted snapshot becomes the reference
    assert (
        result["drift"]["reference"]["status"] == "no reference yet" and result["drift"]["statistics"] == {}
    )
    assert result["reference_updated"]
    reference = load_reference(ctx.store, config.name)
    assert (
        reference["snapshot_key"] == result["snapshot_key"]
        and reference["reason"] == "first accepted snapshot"
    )
    # Data Docs in the store, linked from the result
    assert result["data_docs_key"] == f"{ctx.layout.data_docs}/index.html"
    assert ctx.store.exists(result["data_docs_key"])
    assert result["data_docs_uri"] == ctx.store.uri(result["data_docs_key"])
    html = ctx.store.get_bytes(result["data_docs_key"]).decode()
    assert "digits.rows" in html
    assert any("/validations/" in k for k in ctx.store.list(ctx.layout.data_docs))
    # metrics
    assert metric(batch, "slipway_validation_success") == 1.0
    assert metric(batch, "slipway_validation_failed_expectations") == 0.0
    assert metric(batch, "slipway_validation_rows") == 1797.0

    # second run: drift is compared with the reference and recorded although below threshold
    second, batch2 = run_steps(config, "run-2")
    stats = second["drift"]["statistics"]
    assert second["success"] and second["drift"]["reference"]["status"] == "compared"
    assert set(stats) == {
        "label_tv",
        "mean_intensity_shift",
        "std_intensity_shift",
        "mean_intensity_ks",
        "std_intensity_ks",
        *(f"structure_{k}" for k in ("pixel_mean_map", "pixel_std_map", "row_profile", "column_profile")),
        *(f"class_{k}" for k in ("pixel_mean_map", "pixel_std_map", "row_profile", "column_profile")),
    }
    assert second["champion_witness"] == {"status": "no champion yet"}
    assert ctx.store.get_bytes(second["report_key"]).startswith(b"<!DOCTYPE html>")
    for name, stat in stats.items():
        assert stat["passed"] and 0 <= stat["value"] <= stat["effective_threshold"]
        assert metric(batch2, "slipway_validation_drift", statistic=name) == pytest.approx(
            stat["value"], abs=1e-6
        )
    assert not second["reference_updated"]


def npz_partition(folder: Path, name: str, x: np.ndarray, y: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=y)
    (folder / f"{name}.npz").write_bytes(buffer.getvalue())


def test_bad_partition_stops_the_run_and_never_replaces_the_reference(tmp_path: Path) -> None:
    digits = load_digits()
    parts = tmp_path / "parts"
    parts.mkdir()
    npz_partition(parts, "good", digits.images, digits.target)
    npz_partition(parts, "unscaled", digits.images * 16, digits.target)  # 0..256 where 0..16 is expected
    npz_partition(parts, "one_class", digits.images[digits.target == 3], digits.target[digits.target == 3])
    source = {"kind": "npz", "uri": str(parts / "{partition}.npz"), "scale": 16}
    config = pipeline_config(tmp_path / "store", data={"source": source})
    store = RunContext.create(config, "x").store

    # bad data on the very first run: no reference is created from it
    with pytest.raises(DataValidationFailed) as first:
        run_steps(config, "run-0", "unscaled")
    assert "values.max (all values <= 1): 1797 of 1797 rows (100.00%) exceed it, largest value 16" in str(
        first.value
    )
    assert not store.exists(reference_key(config.name))

    good, _ = run_steps(config, "run-1", "good")
    assert good["reference_updated"]
    before = store.get_bytes(reference_key(config.name))

    with pytest.raises(DataValidationFailed) as info:
        run_steps(config, "run-2", "one_class")
    message = str(info.value)
    assert "labels.max_class_share (no class holds > 30.0% of rows): class 3 holds 100.0%" in message
    assert re.search(
        r"drift\.label_tv .*: observed 0\.9\d\d; largest change: class 3 \d+\.\d% -> 100\.0%", message
    )
    # the report is written even though the run failed, and the reference is untouched
    failed = RunContext.create(config, "run-2").validate_result().dump()
    assert not failed["success"] and "labels.max_class_share" in failed["failed"]
    assert failed["drift"]["statistics"]["label_tv"]["passed"] is False
    assert store.get_bytes(reference_key(config.name)) == before
