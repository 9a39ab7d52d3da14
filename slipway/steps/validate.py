"""The validate step: the data gate between ingest and training.

Reads ``ingest/result.json``, loads the snapshot and validates all of its examples (see
``slipway.validation.validator``) against the config and the pipeline's reference profile.
Writes, whatever the outcome:

* ``validate/result.json`` - ``ValidateResult``: ``ValidationReport.to_dict()`` plus
  ``snapshot_key``, ``snapshot_hash``, ``data_docs_key``, ``data_docs_uri`` and ``reference_updated``;
* ``validate/data_docs/`` - the Great Expectations Data Docs site (``index.html``).

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

log = logging.getLogger(__name__)


def _set_metrics(batch: MetricsBatch, report: ValidationReport) -> None:
    batch.set("slipway_validation_success", 1.0 if report.success else 0.0)
    batch.set("slipway_validation_failed_expectations", len(report.failed))
    batch.set("slipway_validation_rows", report.facts.get("rows", 0))
    for stat in report.drift:
        batch.set("slipway_validation_drift", stat.value, statistic=stat.name)
        batch.set("slipway_validation_drift_threshold", stat.effective_threshold, statistic=stat.name)


def run(ctx: RunContext, batch: MetricsBatch) -> ValidateResult:
    config = ctx.config
    ingest = ctx.ingest_result()
    snapshot_key = ingest.snapshot_key
    snapshot = load_snapshot(ctx.store, snapshot_key)
    reference = load_reference(ctx.store, config.name)

    with tempfile.TemporaryDirectory(prefix="slipway-docs-") as tmp:
        report = validate_split(
            snapshot.all(),
            config.data,
            config.validation,
            reference=reference,
            docs_dir=Path(tmp),
            suite_prefix=config.name,
            run_name=safe_run_id(ctx.run_id),  # becomes a folder of the Data Docs: keep it portable
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
