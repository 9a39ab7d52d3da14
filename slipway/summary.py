"""A few lines a person can read about one run: what happened, with the numbers, and where.

Built only from what the steps stored (parsed through their result models), so it tells the
truth about any run, local or on a cluster (``python -m slipway summary --config ... --run-id ...``).
"""

from __future__ import annotations

from slipway.evaluation.gate import Blessing
from slipway.registry import ModelRegistry
from slipway.results import EvaluateResult, IngestResult, TrainResult, ValidateResult
from slipway.steps.context import RunContext
from slipway.store import ArtifactNotFound


def _blessing(ctx: RunContext) -> Blessing | None:
    try:
        return Blessing.from_dict(ctx.store.get_json(ctx.layout.blessing))
    except ArtifactNotFound:
        return None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def summarize_run(ctx: RunContext) -> str:
    ingest = ctx.find_result("ingest", IngestResult)
    validate = ctx.find_result("validate", ValidateResult)
    train = ctx.find_result("train", TrainResult)
    evaluate = ctx.find_result("evaluate", EvaluateResult)
    blessing = _blessing(ctx)
    registry = ModelRegistry(ctx.store, ctx.config.model_name)
    lines = [f"Slipway run {ctx.run_id} of pipeline {ctx.config.name} (model {ctx.config.model_name})"]

    if ingest:
        rows = ingest.rows
        lines.append(
            f"  dataset    snapshot {ingest.snapshot_hash[:12]}  train {rows.train} / "
            f"validation {rows.validation} / test {rows.test} rows"
        )
    else:
        lines.append("  dataset    (ingest did not run)")

    if validate:
        text = validate.summary or ("PASSED" if validate.success else "FAILED")
        lines.append(f"  validation {text.removeprefix('validation ')}")
        for message in validate.failure_messages[:8]:
            lines.append(f"             failed: {message}")
    else:
        lines.append("  validation (did not run)")

    if train:
        final = train.final_metrics
        resumed = f", resumed from epoch {train.resumed_from_epoch}" if train.resumed_from_epoch else ""
        lines.append(
            f"  training   {train.epochs_completed} epochs in {train.training_seconds:.0f}s{resumed}: "
            f"train accuracy {_pct(final.get('accuracy'))}, validation accuracy {_pct(final.get('val_accuracy'))}"
        )
    if evaluate:
        cand = evaluate.candidate
        champ = evaluate.champion
        text = f"  evaluation candidate test accuracy {_pct(cand.accuracy)}, log loss {_pct(cand.log_loss)}"
        if champ:
            comparison = evaluate.comparison
            delta = comparison.accuracy_delta if comparison else 0.0
            p_value = comparison.mcnemar_p_value if comparison else None
            text += (
                f"; champion v{champ.version} {_pct(champ.accuracy)} on the same test set"
                f" (delta {delta:+.4f}, McNemar p={p_value})"
            )
        else:
            text += "; no champion yet"
        lines.append(text)
    if blessing:
        verdict = "BLESSED" if blessing.blessed else "REJECTED"
        if blessing.forced:
            verdict += f" (forced: {blessing.force_reason})"
        lines.append(f"  gate       {verdict}")
        for reason in blessing.reasons[:6]:
            lines.append(f"             {reason}")

    mine = [v for v in registry.versions() if registry.get_version(v).run_id == ctx.run_id]
    champion = registry.get_alias("champion")
    registered = f"version {mine[-1]}" if mine else "(no version registered by this run)"
    lines.append(f"  registry   {registered}; champion is {'(none)' if champion is None else f'v{champion}'}")
    lines.append("  artifacts")
    lines.append(f"    run          {ctx.store.uri(ctx.prefix)}/")
    if ingest:
        lines.append(f"    snapshot     {ctx.store.uri(ingest.snapshot_key)}")
    if validate and validate.data_docs_uri:
        lines.append(f"    data docs    {validate.data_docs_uri}")
    if ctx.store.exists(ctx.layout.final_report):
        lines.append(f"    report       {ctx.store.uri(ctx.layout.final_report)}")
    elif evaluate and evaluate.report_uri:
        lines.append(f"    report       {evaluate.report_uri}")
    if champion is not None:
        lines.append(f"    champion     {registry.get_version(champion).uri}")
    return "\n".join(lines)
