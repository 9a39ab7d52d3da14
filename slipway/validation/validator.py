"""Validate one split: features, drift against the reference, GX checks, report.

The one entry point the validate step and the benchmark share, so the benchmark times exactly
what the pipeline runs. No store access here: the caller passes the reference profile (or None)
and a folder for the Data Docs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slipway.config import DataConfig, ValidationConfig
from slipway.data.dataset import Split
from slipway.validation.drift import DriftStatistic, compare_to_reference
from slipway.validation.features import compute_features
from slipway.validation.gx_runner import run_checks
from slipway.validation.report import ValidationReport, outcome_of
from slipway.validation.structure import compare_structure
from slipway.validation.suite import build_checks


def _reference_status(reference: dict[str, Any] | None, cfg: ValidationConfig, rows: int) -> dict[str, Any]:
    if not cfg.drift_enabled:
        return {"status": "drift checks disabled (validation.drift_enabled: false)"}
    if reference is None:
        return {"status": "no reference yet"}
    status = "compared" if rows else "not compared: no rows"
    keep = ("snapshot_key", "snapshot_hash", "split", "reason", "updated_at", "run_id")
    return {"status": status, **{k: reference.get(k) for k in keep}, "rows": reference["profile"].get("rows")}


def validate_split(
    split: Split,
    data: DataConfig,
    cfg: ValidationConfig,
    *,
    reference: dict[str, Any] | None = None,
    docs_dir: Path | None = None,
    suite_prefix: str = "slipway",
    run_name: str = "validation",
    extra_statistics: Sequence[DriftStatistic] = (),
) -> ValidationReport:
    """Check ``split`` against the data contract and, given a reference document, for drift
    (global and structural). ``extra_statistics`` (the champion witness's) are checked with them."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    ref_structure = (reference or {}).get("profile", {}).get("structure")
    structural = bool(cfg.drift_enabled and cfg.structure_enabled and ref_structure)
    features = compute_features(split, data, structural=structural, structure_max_rows=cfg.structure_max_rows)
    timings["features"] = time.perf_counter() - started

    mark = time.perf_counter()
    drift: list[DriftStatistic] = []
    if reference is not None and cfg.drift_enabled:
        drift = compare_to_reference(
            features.labels, features.stats.mean, features.stats.std, reference["profile"], cfg
        )
    if structural and features.structure is not None:
        drift += compare_structure(features.structure, ref_structure, cfg, data.class_names)
    drift += list(extra_statistics)
    timings["drift"] = time.perf_counter() - mark

    mark = time.perf_counter()
    checks = build_checks(data, cfg, drift)
    frames = {"rows": features.rows, "dataset": features.dataset}
    if drift:
        import pandas as pd

        drift_columns = pd.DataFrame({d.name: [d.value] for d in drift})
        frames["dataset"] = pd.concat([features.dataset.reset_index(drop=True), drift_columns], axis=1)
    results = run_checks(frames, checks, suite_prefix=suite_prefix, run_name=run_name, docs_dir=docs_dir)
    timings["great_expectations"] = time.perf_counter() - mark

    one_row = {**features.dataset.iloc[0].to_dict(), **{d.name: d.value for d in drift}}
    outcomes = [outcome_of(c, results.get(c.id), features.facts, one_row) for c in checks]
    timings["total"] = time.perf_counter() - started
    status = _reference_status(reference, cfg, len(features.labels))
    if reference is not None and cfg.drift_enabled and not structural:
        status["structure"] = (
            "structure checks disabled (validation.structure_enabled: false)"
            if not cfg.structure_enabled
            else "reference has no structure profile"
        )
    report = ValidationReport(outcomes, drift, status, features.facts, timings)
    report.structure = features.structure
    report.reference_structure = ref_structure if structural else None
    return report
