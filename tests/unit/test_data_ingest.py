"""The ingest step end to end on a ``file://`` store: snapshot, profile, result, idempotence."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slipway.data import load_profile, load_snapshot
from slipway.metrics import MetricsBatch
from slipway.steps import ingest
from slipway.steps.context import RunContext
from tests.data_fixtures import pipeline_config


def test_ingest_digits_writes_snapshot_profile_and_result(tmp_path: Path) -> None:
    config = pipeline_config(tmp_path / "store")
    ctx = RunContext.create(config, "manual__2024-01-01T00:00:00+00:00")
    batch = MetricsBatch(pipeline=config.name, step="ingest")
    result = ingest.run(ctx, batch).dump()

    assert result["rows"] == {"train": 1258, "validation": 180, "test": 359}
    assert result["input_shape"] == [8, 8] and result["num_classes"] == 10
    assert result["snapshot_key"] == f"datasets/digits/{result['snapshot_hash'][:16]}"
    assert result["source"]["kind"] == "digits" and not result["reused"]
    assert ctx.ingest_result().dump() == result
    snapshot = load_snapshot(ctx.store, result["snapshot_key"])
    assert snapshot.train.x.dtype == np.float32 and float(snapshot.train.x.max()) == 1.0
    assert ctx.store.get_json(result["profile_key"]) == load_profile(ctx.store, result["snapshot_key"])
    rows = {s.labels["split"]: s.value for s in batch.samples if s.name == "slipway_ingest_rows"}
    assert rows == {"train": 1258.0, "validation": 180.0, "test": 359.0}

    rerun = ingest.run(RunContext.create(config, "another-run"), MetricsBatch(config.name, "ingest")).dump()
    assert rerun["snapshot_key"] == result["snapshot_key"] and rerun["reused"]
