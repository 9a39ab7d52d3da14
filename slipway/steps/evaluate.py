"""The evaluate step: candidate and champion on the golden set and the new test split -> result.json + report.

Inputs: the ingest result (``snapshot_key``), the candidate at ``train/model/`` and, when the
registry has a ``champion`` alias, that version's files. Both are downloaded to a temporary folder
and scored on the snapshot's test split (the champion is re-scored every run, never compared with
an old number).

Outputs under ``runs/<pipeline>/<run>/evaluate/``:

* ``result.json`` - small, for the gate (``slipway.evaluation.gate.decide``): ``EvaluateResult``
  (``slipway/results.py``): both models' metrics, latency and size, the paired comparison, and
  the champion version the candidate was judged against (promotion compares against it), and
  ``golden``: both models on the pipeline's golden test set (``slipway/evaluation/golden.py``; the
  gate judges non-regression on it and flags the new data as suspect when the champion does far
  worse on the new split than on it);
* ``report.html`` - the human report, with a *pending* gate decision;
* ``predictions.npz`` - per-example labels, predictions, confidences and correctness of both
  models (kept out of result.json so it stays small).

The gate runs afterwards in the Airflow worker: ``blessing = decide(config.gate, result)``, then
``add_blessing_to_report(report_html, blessing)`` gives the final report to store with the version.
"""

from __future__ import annotations

import io
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from slipway.evaluation.comparison import Comparison, ScoredVariant, compare, rescore, score_variant
from slipway.metrics import MetricsBatch
from slipway.results import ComparisonSummary, EvaluateResult, VariantScore
from slipway.steps.context import RunContext, safe_run_id
from slipway.validation.witness import output_profile

log = logging.getLogger(__name__)

EXPLAINED_EXAMPLES = 6
IG_STEPS = 48


def run(ctx: RunContext, batch: MetricsBatch) -> EvaluateResult:
    """Score candidate and champion, write report.html, predictions.npz and result.json."""
    started = time.monotonic()
    cfg = ctx.config
    snapshot_key = ctx.ingest_result().snapshot_key
    test = _test_split(ctx, snapshot_key)
    champion_version, champion_prefix = _champion(ctx)
    candidate_prefix = ctx.layout.model
    common = {"num_classes": cfg.data.num_classes, "latency_batch_size": cfg.gate.latency_batch_size}

    golden, golden_info = _golden_set(ctx, champion_version)
    with tempfile.TemporaryDirectory(prefix="slipway-evaluate-") as tmp:
        cand_dir = ctx.store.download_dir(candidate_prefix, Path(tmp) / "candidate")
        candidate = score_variant("candidate", cand_dir, test.x, test.y, **common)
        champion = None
        if champion_version is not None and champion_prefix is not None:
            champ_dir = ctx.store.download_dir(champion_prefix, Path(tmp) / "champion")
            champion = score_variant(
                "champion", champ_dir, test.x, test.y, version=champion_version, **common
            )
    stats: dict[str, Any] = {
        "bootstrap_samples": cfg.gate.bootstrap_samples,
        "confidence": 1.0 - cfg.gate.significance_level,
        "seed": cfg.gate.bootstrap_seed,
    }
    comparison = compare(candidate, champion, **stats)
    golden_comparison = None
    if golden is not None:
        golden_comparison = compare(
            rescore(candidate, golden.x, golden.y),
            rescore(champion, golden.x, golden.y) if champion else None,
            **stats,
        )
    report_html = build_report(ctx, comparison, test.x, test.y, snapshot_key, golden_comparison, golden_info)

    report_key = ctx.layout.evaluation_report
    ctx.store.put_bytes(report_key, report_html.encode("utf-8"))
    predictions_key = ctx.layout.predictions
    ctx.store.put_bytes(predictions_key, _predictions_npz(test.y, comparison))

    names = cfg.data.class_names
    summary = comparison.summary()
    result = EvaluateResult(
        model_name=cfg.model_name,
        run_id=ctx.run_id,
        snapshot_key=snapshot_key,
        test_rows=len(test),
        num_classes=cfg.data.num_classes,
        candidate=VariantScore.model_validate(
            {
                **candidate.summary(names),
                "model_key": candidate_prefix,
                "output_profile": output_profile(candidate.scored.probabilities, test.y),
            }
        ),
        champion=VariantScore.model_validate({**champion.summary(names), "model_key": champion_prefix})
        if champion and champion_prefix
        else None,
        comparison=ComparisonSummary.model_validate(summary) if summary else None,
        golden=_golden_summary(golden_info, golden_comparison, names),
        report_key=report_key,
        report_uri=ctx.store.uri(report_key),
        predictions_key=predictions_key,
        wall_seconds=round(time.monotonic() - started, 3),
    )
    ctx.write_result("evaluate", result)
    _set_metrics(batch, ctx, comparison)
    log.info(
        "evaluated candidate (accuracy %.4f) against %s in %.1fs",
        candidate.metrics.accuracy,
        f"champion v{champion_version} (accuracy {champion.metrics.accuracy:.4f})"
        if champion
        else "no champion",
        result.wall_seconds,
    )
    return result


def _golden_set(ctx: RunContext, champion_version: int | None) -> tuple[Any, dict[str, Any]]:
    """(golden examples or None, what they are). Configured source, else the frozen set, else -
    for a champion promoted before golden sets existed - its registered snapshot's test split,
    frozen now. None before the first champion: the new split is all there is."""
    from slipway.evaluation.golden import configured_golden, freeze_golden, load_golden, load_golden_record

    cfg = ctx.config
    if cfg.golden.source is not None:
        return configured_golden(cfg.golden.source)
    record = load_golden_record(ctx.store, cfg.name)
    if record is None and champion_version is not None:
        from slipway.registry import ModelRegistry

        key = (
            ModelRegistry(ctx.store, cfg.model_name)
            .get_version(champion_version)
            .metadata.get("snapshot_key")
        )
        if key:
            reason = f"test split of champion v{champion_version}'s registered snapshot"
            record = freeze_golden(ctx.store, cfg.name, key, reason=reason, run_id=ctx.run_id)
    if record is None:
        return None, {"status": "no golden set yet: the first champion's test split becomes it at promotion"}
    keep = ("source", "snapshot_key", "split", "rows", "sha256", "reason", "frozen_at")
    return load_golden(ctx.store, record), {k: record.get(k) for k in keep}


def _golden_summary(
    info: dict[str, Any], comparison: Comparison | None, names: list[str] | None
) -> dict[str, Any]:
    """``golden`` in result.json: the golden set's identity and both models' figures on it."""
    if comparison is None:
        return {**info, "candidate": None, "champion": None, "comparison": None}
    champion = comparison.champion
    return {
        **info,
        "status": "scored",
        "candidate": comparison.candidate.metrics.summary(names),
        "champion": {**champion.metrics.summary(names), "version": champion.version} if champion else None,
        "comparison": comparison.summary(),
    }


def build_report(
    ctx: RunContext,
    comparison: Comparison,
    x: np.ndarray,
    y: np.ndarray,
    snapshot_key: str,
    golden: Comparison | None = None,
    golden_info: dict[str, Any] | None = None,
) -> str:
    """The HTML report (pending gate decision), with integrated-gradients maps for image inputs."""
    from slipway.evaluation.explain import integrated_gradients, pick_examples
    from slipway.evaluation.report import ReportData, image_shape, render_report

    candidate = comparison.candidate
    explained = attributions = None
    if image_shape(x.shape[1:]) is not None:
        explained = pick_examples(y, candidate.metrics.predictions, EXPLAINED_EXAMPLES)
        attributions = integrated_gradients(candidate.model, x[explained], steps=IG_STEPS)
    data = ReportData(
        model_name=ctx.config.model_name,
        run_id=ctx.run_id,
        snapshot_key=snapshot_key,
        x_test=x,
        y_test=y,
        candidate=_view(candidate),
        champion=_view(comparison.champion) if comparison.champion else None,
        mcnemar=comparison.mcnemar,
        bootstrap=comparison.bootstrap,
        class_names=ctx.config.data.class_names,
        explained=explained,
        attributions=attributions,
        significance_level=ctx.config.gate.significance_level,
        golden=_golden_views(golden, golden_info),
    )
    return render_report(data)


def _golden_views(golden: Comparison | None, info: dict[str, Any] | None) -> Any:
    if golden is None:
        return None
    from slipway.evaluation.report import GoldenView

    return GoldenView(
        description=f"{(info or {}).get('source', '?')}: {(info or {}).get('snapshot_key') or (info or {}).get('origin', '')}",
        candidate=golden.candidate.metrics,
        champion=golden.champion.metrics if golden.champion else None,
    )


def _test_split(ctx: RunContext, snapshot_key: str) -> Any:
    """The test split of the run's snapshot (the same examples for both models)."""
    from slipway.data import load_snapshot

    return load_snapshot(ctx.store, snapshot_key).test


def _champion(ctx: RunContext) -> tuple[int | None, str | None]:
    """The champion's version and store prefix, or (None, None) for the first model."""
    from slipway.registry import ModelRegistry

    registry = ModelRegistry(ctx.store, ctx.config.model_name)
    version = registry.get_alias("champion")
    if version is None:
        return None, None
    return version, registry.model_prefix(version)


def _view(variant: ScoredVariant) -> Any:
    from slipway.evaluation.report import ModelView

    label = "candidate" if variant.version is None else f"champion v{variant.version}"
    return ModelView(label, variant.metrics, variant.version, variant.scored.latency, variant.scored.size)


def _predictions_npz(y: np.ndarray, comparison: Comparison) -> bytes:
    arrays: dict[str, Any] = {"y_true": np.asarray(y)}  # Any: numpy's stub types savez's **kwds as bool
    for variant in (comparison.candidate, comparison.champion):
        if variant is None:
            continue
        m = variant.metrics
        arrays[f"{variant.variant}_prediction"] = m.predictions.astype(np.int32)
        arrays[f"{variant.variant}_confidence"] = m.confidence.astype(np.float32)
        arrays[f"{variant.variant}_correct"] = m.correct
        arrays[f"{variant.variant}_confusion"] = m.confusion
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _set_metrics(batch: MetricsBatch, ctx: RunContext, comparison: Comparison) -> None:
    """Accuracy and loss gauges; the candidate has no registry version yet, so it is labelled by run."""
    model = ctx.config.model_name
    for variant in (comparison.candidate, comparison.champion):
        if variant is None:
            continue
        version = safe_run_id(ctx.run_id) if variant.version is None else str(variant.version)
        labels = {"model": model, "version": version, "variant": variant.variant}
        batch.set("slipway_model_accuracy", variant.metrics.accuracy, **labels)
        batch.set("slipway_model_loss", variant.metrics.log_loss, **labels)
