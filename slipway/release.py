"""After evaluation: judge the candidate, register it, promote it. Light enough for the Airflow worker.

These are the pipeline's *decisions*, kept out of the Airflow operators so they are testable
without Airflow and identical wherever they run. Each writes what it decided, with the numbers it
decided on, to the store (the Blessing under the run, alias moves in the registry history).

Promotion is a compare-and-swap against the champion the candidate was *judged against* (the
evaluate result records it): if another run or a person moved ``champion`` after this run's
evaluation, the comparison that blessed the candidate is stale, so promotion fails with
``ChampionMoved`` and changes nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import Any

from slipway.errors import BadInputError
from slipway.evaluation.gate import Blessing, decide
from slipway.layout import gate_decisions_counter
from slipway.metrics import MetricsBatch, increment_total
from slipway.registry import AliasConflict, ModelRegistry
from slipway.results import EvaluateResult, OptimizeResult, TrainResult
from slipway.steps.context import RunContext
from slipway.store import ArtifactNotFound, PreconditionFailed

log = logging.getLogger(__name__)

GATE_RESULTS = ("blessed", "rejected", "forced")


class CandidateNotBlessed(BadInputError):
    """Register or promote was asked for a candidate the gate did not bless (no retry can fix it)."""


class ChampionMoved(AliasConflict, BadInputError):
    """The champion is no longer the version the candidate was judged against: not promoted."""


class RolloutNotPromoted(BadInputError):
    """The run's canary rollout rolled back (or has not finished): the champion must not move."""


def require_rollout_promoted(ctx: RunContext) -> None:
    """The champion moves only after this run's canary rollout promoted (or was skipped)."""
    try:
        state = ctx.store.get_json(ctx.layout.rollout_state)
    except ArtifactNotFound:
        return  # a DAG without a canary task
    if state["status"] not in ("promoted", "skipped"):
        raise RolloutNotPromoted(
            f"not promoting: the canary rollout is {state['status']} ({state.get('reason')}); champion untouched"
        )


def read_blessing(ctx: RunContext) -> Blessing:
    """The run's stored Blessing; ``StepInputMissing`` semantics when the gate has not run."""
    from slipway.errors import StepInputMissing

    key = ctx.layout.blessing
    try:
        return Blessing.from_dict(ctx.store.get_json(key))
    except ArtifactNotFound:
        raise StepInputMissing(
            f"no gate decision for run {ctx.run_id!r} at {ctx.store.uri(key)}: run the gate first"
        ) from None


def judge_candidate(
    ctx: RunContext, batch: MetricsBatch, *, force_reason: str | None = None, actor: str = "slipway"
) -> Blessing:
    """Apply the gate policy to the evaluate step's figures and store the Blessing of this run.

    Idempotent: a retry returns the Blessing already stored for the run (the decision is not
    re-drawn, and the decision counter is not counted twice).
    """
    key = ctx.layout.blessing
    try:
        return Blessing.from_dict(ctx.store.get_json(key))
    except ArtifactNotFound:
        pass
    evaluation = ctx.evaluate_result()
    blessing = decide(
        ctx.config.gate, evaluation, force_reason=force_reason, forced_by=actor if force_reason else None
    )
    blessing = dataclasses.replace(blessing, origin=candidate_origin(ctx))
    try:
        ctx.store.put_json_if_absent(key, blessing.to_dict())
    except PreconditionFailed:  # a concurrent retry decided first: its decision stands
        return Blessing.from_dict(ctx.store.get_json(key))
    increment_total(ctx.store, gate_decisions_counter(ctx.config.name), blessing.result)
    _set_gate_totals(ctx, batch)
    _write_final_report(ctx, evaluation, blessing)
    return blessing


def candidate_origin(ctx: RunContext) -> dict[str, Any]:
    """Where the run's candidate came from: the train step, or a sweep's best trial (with its study)."""
    train = ctx.find_result("train", TrainResult)
    if train is None:  # no train result (a forced gate on a bare run): origin unknown
        return {}
    if train.sweep is None:
        return {"kind": "train"}
    sweep = train.sweep
    return {
        "kind": "sweep",
        "study_id": sweep.study_id,
        "trial": sweep.trial,
        "params": sweep.params,
        "objective": sweep.objective,
        "value": sweep.value,
    }


def served_model(ctx: RunContext, train: TrainResult) -> tuple[str, dict[str, Any] | None]:
    """The model to register: the leaner variant when the optimize step chose it, else the float one."""
    optimized = ctx.find_result("optimize", OptimizeResult)
    if optimized is None:
        return train.model_key, None
    summary: dict[str, Any] = {
        "kind": optimized.kind,
        "replaces_float": optimized.replaces_float,
        "size_ratio": optimized.size_ratio,
        "reasons": optimized.reasons,
        "comparison": optimized.comparison,
        "float": optimized.float.dump(),
        "leaner": optimized.leaner.dump(),
    }
    return (optimized.model_key if optimized.replaces_float else train.model_key), summary


def _write_final_report(ctx: RunContext, evaluation: EvaluateResult, blessing: Blessing) -> None:
    """The evaluation report with the gate's decision filled in: the version's report of record."""
    if not evaluation.report_key:
        return
    from slipway.evaluation.report import add_blessing_to_report

    html = ctx.store.get_bytes(evaluation.report_key).decode()
    ctx.store.put_bytes(ctx.layout.final_report, add_blessing_to_report(html, blessing).encode())


def final_report_key(ctx: RunContext) -> str:
    return ctx.layout.final_report


def _set_gate_totals(ctx: RunContext, batch: MetricsBatch) -> None:
    try:
        totals = ctx.store.get_json(ctx.layout.gate_decisions)
    except ArtifactNotFound:
        totals = {}
    for label in GATE_RESULTS:
        batch.set(
            "slipway_gate_decisions_total", totals.get(label, 0.0), model=ctx.config.model_name, result=label
        )


def register_candidate(ctx: RunContext, batch: MetricsBatch, *, actor: str = "slipway") -> dict[str, Any]:
    """Register the blessed model as a new immutable version and point ``candidate`` at it."""
    blessing = read_blessing(ctx)
    if not blessing.blessed:
        raise CandidateNotBlessed(
            f"refusing to register run {ctx.run_id} of {ctx.config.name}: the gate did not bless it"
            f" ({'; '.join(blessing.reasons) or 'no reasons recorded'})"
        )
    train = ctx.train_result()
    evaluation = ctx.evaluate_result()
    registry = ModelRegistry(ctx.store, ctx.config.model_name)
    model_key, optimization = served_model(ctx, train)
    version = registry.register(
        model_key,
        metadata={
            "pipeline": ctx.config.name,
            "snapshot_key": evaluation.snapshot_key,
            "config_fingerprint": train.config_fingerprint,
            "code_version": train.code_version,
            "test_accuracy": evaluation.candidate.accuracy,
            "judged_against_champion": evaluation.champion_version,
            # The champion witness's reference figures (slipway/validation/witness.py).
            "output_profile": evaluation.candidate.output_profile,
            "golden_accuracy": ((evaluation.golden or {}).get("candidate") or {}).get("accuracy"),
            "blessing": blessing.to_dict(),
            "origin": blessing.origin,
            "optimization": optimization,
        },
        run_id=ctx.run_id,
        actor=actor,
    )
    _attach_once(registry, version.number, "blessing.json", ctx.store.get_bytes(ctx.layout.blessing))
    has_report = ctx.store.exists(ctx.layout.final_report)
    if has_report:
        _attach_once(registry, version.number, "report.html", ctx.store.get_bytes(ctx.layout.final_report))
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
    """Move ``champion`` to ``version`` and make its data the drift reference.

    The move is a compare-and-swap against the champion this run's candidate was evaluated
    against, never against a freshly read alias: a champion moved since (another run, a manual
    promotion) raises ``ChampionMoved`` and nothing is changed. A retry after a successful move
    finds ``champion == version`` and only finishes the reference update.
    """
    blessing = read_blessing(ctx)
    if not blessing.blessed:
        raise CandidateNotBlessed(f"refusing to promote run {ctx.run_id}: the gate did not bless it")
    require_rollout_promoted(ctx)
    evaluation = ctx.evaluate_result()
    judged_against = evaluation.champion_version
    registry = ModelRegistry(ctx.store, ctx.config.model_name)
    current = registry.get_alias("champion")
    if current != version:
        if current != judged_against:
            raise _champion_moved(ctx, version, judged_against, current)
        try:
            registry.set_alias(
                "champion",
                version,
                actor=actor,
                run_id=ctx.run_id,
                reason=_promotion_reason(blessing, evaluation),
                expected=judged_against,
            )
        except AliasConflict:  # moved between our read and our write
            raise _champion_moved(ctx, version, judged_against, registry.get_alias("champion")) from None
    _promote_reference(ctx, evaluation.snapshot_key)
    _freeze_golden(ctx, evaluation.snapshot_key)
    batch.set("slipway_registry_champion_version", version, model=ctx.config.model_name)
    moved_at = _last_move_time(registry, "champion", version)
    if moved_at is not None:
        batch.set(
            "slipway_registry_champion_promoted_timestamp_seconds", moved_at, model=ctx.config.model_name
        )
    return {"model_name": ctx.config.model_name, "champion": version, "previous_champion": judged_against}


def _champion_moved(ctx: RunContext, version: int, judged: int | None, current: int | None) -> ChampionMoved:
    def name(v: int | None) -> str:
        return "no champion" if v is None else f"v{v}"

    return ChampionMoved(
        f"not promoting {ctx.config.model_name} v{version} (run {ctx.run_id}): it was judged against"
        f" {name(judged)}, but the champion is now {name(current)} (moved after this run's evaluation);"
        " the champion and the drift reference are unchanged - re-run the pipeline to judge the"
        " candidate against the current champion"
    )


def _promotion_reason(blessing: Blessing, evaluation: EvaluateResult) -> str:
    candidate = evaluation.candidate.accuracy
    champion = evaluation.champion
    if blessing.forced:
        return f"forced by {blessing.forced_by}: {blessing.force_reason} (accuracy {candidate:.4f})"
    if champion is not None:
        p_value = evaluation.comparison.mcnemar_p_value if evaluation.comparison else None
        return (
            f"gate blessed: accuracy {candidate:.4f} vs champion v{champion.version} "
            f"{champion.accuracy:.4f} (McNemar p={p_value})"
        )
    return f"gate blessed: first model, accuracy {candidate:.4f}"


def _promote_reference(ctx: RunContext, snapshot_key: str) -> None:
    from slipway.validation import promote_reference

    promote_reference(ctx.store, ctx.config.name, snapshot_key, run_id=ctx.run_id)


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


def _last_move_time(registry: ModelRegistry, alias: str, version: int) -> float | None:
    """Unix time ``alias`` last moved to ``version`` (from the history, so a retry keeps it)."""
    from datetime import datetime

    moves = [m for m in registry.history(alias) if m["to_version"] == version]
    if not moves:
        return None
    latest = max(moves, key=lambda m: m["seq"])
    return datetime.fromisoformat(latest["at"].replace("Z", "+00:00")).timestamp()
