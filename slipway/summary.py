"""A few lines a person can read about one run: what happened, with the numbers, and where.

Built only from what the steps stored, so it tells the truth about any run, local or on a
cluster (``python -m slipway summary --config ... --run-id ...``).
"""

from __future__ import annotations

from typing import Any

from slipway.registry import ModelRegistry
from slipway.steps.context import RunContext
from slipway.store import ArtifactNotFound


def _load(ctx: RunContext, key: str) -> dict[str, Any] | None:
    try:
        return ctx.store.get_json(key)
    except ArtifactNotFound:
        return None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def summarize_run(ctx: RunContext) -> str:
    ingest = _load(ctx, ctx.result_key("ingest"))
    validate = _load(ctx, ctx.result_key("validate"))
    train = _load(ctx, ctx.result_key("train"))
    evaluate = _load(ctx, ctx.result_key("evaluate"))
    blessing = _load(ctx, ctx.key("gate", "blessing.json"))
    registry = ModelRegistry(ctx.store, ctx.config.model_name)
    lines = [f"Slipway run {ctx.run_id} of pipeline {ctx.config.name} (model {ctx.config.model_name})"]

    if ingest:
        rows = ingest.get("rows", {})
        lines.append(
            f"  dataset    snapshot {ingest['snapshot_hash'][:12]}  train {rows.get('train')} / "
            f"validation {rows.get('validation')} / test {rows.get('test')} rows"
        )
    else:
        lines.append("  dataset    (ingest did not run)")

    if validate:
        text = validate.get("summary") or ("PASSED" if validate.get("success") else "FAILED")
        lines.append(f"  validation {text.removeprefix('validation ')}")
        for message in validate.get("failure_messages", [])[:8]:
            lines.append(f"             failed: {message}")
    else:
        lines.append("  validation (did not run)")

    if train:
        final = train.get("final_metrics", {})
        resumed = (
            f", resumed from epoch {train['resumed_from_epoch']}" if train.get("resumed_from_epoch") else ""
        )
        lines.append(
            f"  training   {train['epochs_completed']} epochs in {train['training_seconds']:.0f}s{resumed}: "
            f"train accuracy {_pct(final.get('accuracy'))}, validation accuracy {_pct(final.get('val_accuracy'))}"
        )
    if evaluate:
        cand = evaluate["candidate"]
        champ = evaluate.get("champion")
        text = f"  evaluation candidate test accuracy {_pct(cand['accuracy'])}, log loss {_pct(cand.get('log_loss'))}"
        if champ:
            comparison = evaluate.get("comparison", {})
            text += (
                f"; champion v{champ.get('version')} {_pct(champ['accuracy'])} on the same test set"
                f" (delta {comparison.get('accuracy_delta', 0):+.4f}, McNemar p={comparison.get('mcnemar_p_value')})"
            )
        else:
            text += "; no champion yet"
        lines.append(text)
    if blessing:
        verdict = "BLESSED" if blessing.get("blessed") else "REJECTED"
        if blessing.get("forced"):
            verdict += f" (forced: {blessing.get('force_reason')})"
        lines.append(f"  gate       {verdict}")
        for reason in blessing.get("reasons", [])[:6]:
            lines.append(f"             {reason}")

    mine = [v for v in registry.versions() if registry.get_version(v).run_id == ctx.run_id]
    champion = registry.get_alias("champion")
    lines.append(
        f"  registry   version {mine[-1] if mine else '(none registered by this run)'}; champion is v{champion}"
    )
    lines.append("  artifacts")
    lines.append(f"    run          {ctx.store.uri(ctx.prefix)}/")
    if ingest:
        lines.append(f"    snapshot     {ctx.store.uri(ingest['snapshot_key'])}")
    if validate and validate.get("data_docs_uri"):
        lines.append(f"    data docs    {validate['data_docs_uri']}")
    final_report = ctx.key("gate", "report.html")
    if ctx.store.exists(final_report):
        lines.append(f"    report       {ctx.store.uri(final_report)}")
    elif evaluate and evaluate.get("report_uri"):
        lines.append(f"    report       {evaluate['report_uri']}")
    if champion is not None:
        lines.append(f"    champion     {registry.get_version(champion).uri}")
    return "\n".join(lines)
