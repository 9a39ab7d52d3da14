"""After evaluation: judge the candidate, register it, promote it. Light enough for the Airflow worker.

These are the pipeline's *decisions*, kept out of the Airflow operators so they are testable
without Airflow and identical wherever they run. Each writes what it decided, with the numbers it
decided on, to the store (the Blessing under the run, alias moves in the registry history).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from slipway.evaluation.gate import Blessing, decide
from slipway.metrics import MetricsBatch, increment_total
from slipway.registry import ModelRegistry
from slipway.steps.context import RunContext
from slipway.store import ArtifactNotFound, ArtifactStore, PreconditionFailed

log = logging.getLogger(__name__)

GATE_RESULTS = ("blessed", "rejected", "forced")


def judge_candidate(
    ctx: RunContext, batch: MetricsBatch, *, force_reason: str | None = None, actor: str = "slipway"
) -> Blessing:
    """Apply the gate policy to the evaluate step's figures and store the Blessing of this run.

    Idempotent: a retry returns the Blessing already stored for the run (the decision is not
    re-drawn, and the decision counter is not counted twice).
    """
    key = ctx.key("gate", "blessing.json")
    try:
        return Blessing.from_dict(ctx.store.get_json(key))
    except ArtifactNotFound:
        pass
    evaluation = ctx.read_result("evaluate")
    blessing = decide(
        ctx.config.gate, evaluation, force_reason=force_reason, forced_by=actor if force_reason else None
    )
    try:
        ctx.store.put_json_if_absent(key, blessing.to_dict())
    except PreconditionFailed:  # a concurrent retry decided first: its decision stands
        return Blessing.from_dict(ctx.store.get_json(key))
    increment_total(ctx.store, f"{ctx.config.name}/gate_decisions", blessing.result)
    _set_gate_totals(ctx, batch)
    _write_final_report(ctx, evaluation, blessing)
    return blessing


def _write_final_report(ctx: RunContext, evaluation: dict[str, Any], blessing: Blessing) -> None:
    """The evaluation report with the gate's decision filled in: the version's report of record."""
    if not evaluation.get("report_key"):
        return
    from slipway.evaluation.report import add_blessing_to_report

    html = ctx.store.get_bytes(evaluation["report_key"]).decode()
    ctx.store.put_bytes(ctx.key("gate", "report.html"), add_blessing_to_report(html, blessing).encode())


def final_report_key(ctx: RunContext) -> str:
    return ctx.key("gate", "report.html")


def _set_gate_totals(ctx: RunContext, batch: MetricsBatch) -> None:
    try:
        totals = ctx.store.get_json(f"metrics/{ctx.config.name}/gate_decisions.json")
    except ArtifactNotFound:
        totals = {}
    for label in GATE_RESULTS:
        batch.set(
            "slipway_gate_decisions_total", totals.get(label, 0.0), model=ctx.config.model_name, result=label
        )


def register_candidate(ctx: RunContext, batch: MetricsBatch, *, actor: str = "slipway") -> dict[str, Any]:
    """Register the blessed model as a new immutable version and point ``candidate`` at it."""
    blessing = Blessing.from_dict(ctx.store.get_json(ctx.key("gate", "blessing.json")))
    if not blessing.blessed:
        raise RuntimeError(f"refusing to register run {ctx.run_id}: the gate did not bless it")
    train = ctx.read_result("train")
    evaluation = ctx.read_result("evaluate")
    registry = ModelRegistry(ctx.store, ctx.config.model_name)
    version = registry.register(
        train["model_key"],
        metadata={
            "pipeline": ctx.config.name,
            "snapshot_key": evaluation.get("snapshot_key"),
            "config_fingerprint": train.get("config_fingerprint"),
            "code_version": train.get("code_version"),
            "test_accuracy": evaluation["candidate"]["accuracy"],
            # The champion witness's reference figures (slipway/validation/witness.py).
            "output_profile": evaluation["candidate"].get("output_profile"),
            "golden_accuracy": ((evaluation.get("golden") or {}).get("candidate") or {}).get("accuracy"),
            "blessing": blessing.to_dict(),
        },
        run_id=ctx.run_id,
        actor=actor,
    )
    _attach_once(
        registry, version.number, "blessing.json", ctx.store.get_bytes(ctx.key("gate", "blessing.json"))
    )
    has_report = ctx.store.exists(final_report_key(ctx))
    if has_report:
        _attach_once(registry, version.number, "report.html", ctx.store.get_bytes(final_report_key(ctx)))
    reason = "blessed by the evaluation gate"
    if blessing.forced:
        reason = f"forced deployment by {blessing.forced_by}: {blessing.force_reason}"
    if registry.get_alias("candidate") != version.number:
        registry.set_alias("candidate", version.number, actor=actor, run_id=ctx.run_id, reason=reason)
    batch.set("slipway_registry_latest_version", registry.latest_version() or 0, model=ctx.config.model_name)
    return {
        "model_name": ctx.config.model_name,
        "version": version.number,
        "model_uri": version.uri,
        "model_key": f"{version.prefix}/metadata.json",
        "report_key": registry.attachment_key(version.number, "report.html") if has_report else "",
        "report_uri": registry.attachment_uri(version.number, "report.html") if has_report else "",
        "forced": blessing.forced,
    }


def promote_candidate(
    ctx: RunContext, batch: MetricsBatch, version: int, *, actor: str = "slipway"
) -> dict[str, Any]:
    """Move ``champion`` to ``version`` by compare-and-swap and make its data the drift reference."""
    registry = ModelRegistry(ctx.store, ctx.config.model_name)
    previous = registry.get_alias("champion")
    blessing = Blessing.from_dict(ctx.store.get_json(ctx.key("gate", "blessing.json")))
    evaluation = ctx.read_result("evaluate")
    if previous != version:
        registry.set_alias(
            "champion",
            version,
            actor=actor,
            run_id=ctx.run_id,
            reason=_promotion_reason(blessing, evaluation),
            expected=previous,
        )
    _promote_reference(ctx.store, ctx.config.name, evaluation.get("snapshot_key"))
    _freeze_golden(ctx, evaluation.get("snapshot_key"))
    batch.set("slipway_registry_champion_version", version, model=ctx.config.model_name)
    return {"model_name": ctx.config.model_name, "champion": version, "previous_champion": previous}


def _promotion_reason(blessing: Blessing, evaluation: dict[str, Any]) -> str:
    candidate = evaluation["candidate"]["accuracy"]
    champion = evaluation.get("champion") or {}
    if blessing.forced:
        return f"forced by {blessing.forced_by}: {blessing.force_reason} (accuracy {candidate:.4f})"
    if champion:
        p_value = (evaluation.get("comparison") or {}).get("mcnemar_p_value")
        return (
            f"gate blessed: accuracy {candidate:.4f} vs champion v{champion.get('version')} "
            f"{champion['accuracy']:.4f} (McNemar p={p_value})"
        )
    return f"gate blessed: first model, accuracy {candidate:.4f}"


def _promote_reference(store: ArtifactStore, pipeline: str, snapshot_key: str | None) -> None:
    if not snapshot_key:
        return
    from slipway.validation import promote_reference

    promote_reference(store, pipeline, snapshot_key)


def _freeze_golden(ctx: RunContext, snapshot_key: str | None) -> None:
    """The first promotion freezes its snapshot's test split as the pipeline's golden set (a
    configured golden source needs nothing frozen; later promotions leave the golden set alone)."""
    if not snapshot_key or ctx.config.golden.source is not None:
        return
    from slipway.evaluation.golden import freeze_golden

    freeze_golden(
        ctx.store, ctx.config.name, snapshot_key, reason="first champion promoted", run_id=ctx.run_id
    )


def _attach_once(registry: ModelRegistry, version: int, name: str, data: bytes) -> None:
    # Attached by an earlier try of this task: attachments are immutable, keep the first.
    with contextlib.suppress(PreconditionFailed):
        registry.attach(version, name, data)
