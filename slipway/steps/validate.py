"""The validate step: the data gate between ingest and training.

Reads ``ingest/result.json``, loads the snapshot and validates all of its examples (see
``slipway.validation.validator``) against the config and the pipeline's reference profile.
Writes, whatever the outcome:

* ``validate/result.json`` - ``ValidateResult``: ``ValidationReport.to_dict()`` plus ``snapshot_key``,
  ``snapshot_hash``, ``data_docs_key``, ``data_docs_uri`` and ``reference_updated``;
* ``validate/data_docs/`` - the Great Expectations Data Docs site (``index.html``);
* ``validate/report.html`` - the structural pictures: for each failed structural check, the
  reference's and the partition's mean image (or profile curves) side by side with their
  difference (``report_key`` / ``report_uri`` in the result).

When the pipeline has a champion, it scores the partition first (``champion_witness``: its
predicted-class and confidence distributions and its accuracy against its registration figures);
its statistics are checked with the drift statistics and summarised under ``champion_witness``.

Then exports the validation metrics, logs a one-line summary last, and on failure raises
``DataValidationFailed`` naming each failed expectation with what was observed. The first
snapshot that passes on a pipeline without a reference becomes the reference; failed data never
does.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from slipway.data.snapshot import load_snapshot
from slipway.metrics import MetricsBatch
from slipway.results import ValidateResult
from slipway.steps.context import RunContext, safe_run_id
from slipway.validation.docs import publish_docs
from slipway.validation.errors import DataValidationFailed
from slipway.validation.reference import adopt_first_reference, load_reference
from slipway.validation.report import ValidationReport
from slipway.validation.validator import validate_split
from slipway.validation.witness import champion_witness

log = logging.getLogger(__name__)


def _set_metrics(batch: MetricsBatch, report: ValidationReport) -> None:
    batch.set("slipway_validation_success", 1.0 if report.success else 0.0)
    batch.set("slipway_validation_failed_expectations", len(report.failed))
    batch.set("slipway_validation_rows", report.facts.get("rows", 0))
    for stat in report.drift:
        batch.set("slipway_validation_drift", stat.value, statistic=stat.name)
        batch.set("slipway_validation_drift_threshold", stat.effective_threshold, statistic=stat.name)


def _write_pictures(
    ctx: RunContext, report: ValidationReport, class_names: list[str] | None
) -> dict[str, str]:
    """``validate/report.html`` with the structural pictures; its key and URI for the result."""
    from slipway.validation.pictures import render_validation_report

    key = ctx.key("validate", "report.html")
    ctx.store.put_bytes(key, render_validation_report(report, class_names).encode("utf-8"))
    return {"report_key": key, "report_uri": ctx.store.uri(key)}


def run(ctx: RunContext, batch: MetricsBatch) -> ValidateResult:
    config = ctx.config
    ingest = ctx.ingest_result()
    snapshot_key = ingest.snapshot_key
    snapshot = load_snapshot(ctx.store, snapshot_key)
    reference = load_reference(ctx.store, config.name)
    everything = snapshot.all()
    witness_stats, witness = champion_witness(ctx.store, config, everything.x, everything.y)

    with tempfile.TemporaryDirectory(prefix="slipway-docs-") as tmp:
        report = validate_split(
            everything,
            config.data,
            config.validation,
            reference=reference,
            docs_dir=Path(tmp),
            suite_prefix=config.name,
            run_name=safe_run_id(ctx.run_id),  # becomes a folder of the Data Docs: keep it portable
            extra_statistics=witness_stats,
        )
        docs_key = publish_docs(ctx.store, Path(tmp), ctx.layout.data_docs)

    reference_updated = False
    if report.success and reference is None and config.validation.drift_enabled:
        reference_updated = adopt_first_reference(ctx.store, config.name, snapshot_key, ctx.run_id)

    result = ValidateResult.model_validate(
        {
            **report.to_dict(),
            "snapshot_key": snapshot_key,
            "snapshot_hash": ingest.snapshot_hash,
            "data_docs_key": docs_key,
            "data_docs_uri": ctx.store.uri(docs_key),
            "reference_updated": reference_updated,
            "champion_witness": witness,
            **_write_pictures(ctx, report, config.data.class_names),
        }
    )
    ctx.write_result("validate", result)
    _set_metrics(batch, report)

    for outcome in report.failed:
        log.error("failed: %s", outcome.message)
    log.info("Data Docs: %s", result.data_docs_uri)
    log.info("%s", report.summary())
    if not report.success:
        raise DataValidationFailed(report.failure_message(f"snapshot {snapshot_key}"), result.failed)
    return result
