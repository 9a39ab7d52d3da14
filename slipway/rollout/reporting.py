"""Pipeline health metrics of a canary rollout: the canary's weight and the decisions taken.

Called by the rollout operator after every analysis (and for a skipped rollout), so a dashboard
shows the weight move step by step and an alert sees a rollback. Decisions are running totals in
the store (``metrics/<pipeline>/rollout_decisions.json``, compare-and-swap like the gate's), so
they survive the task's deferrals and restarts; the weight is the rollout's current canary weight.
"""

from __future__ import annotations

from typing import Any

from slipway import metrics
from slipway.config import PipelineConfig
from slipway.layout import counter_key, rollout_decisions_counter
from slipway.store import ArtifactNotFound, ArtifactStore

ROLLOUT_RESULTS = ("advance", "hold", "promote", "rollback", "skipped")


def new_decisions(state: dict[str, Any], seen: int) -> list[str]:
    """The results of the analyses recorded after the first ``seen`` (a skip is one decision)."""
    if state.get("status") == "skipped" and not state.get("analyses"):
        return ["skipped"]
    return [record["decision"]["action"] for record in state.get("analyses", [])[seen:]]


def report_rollout(config: PipelineConfig, store: ArtifactStore, state: dict[str, Any], seen: int) -> None:
    """Count the new decisions and export the canary weight; never raises into the rollout."""
    counter = rollout_decisions_counter(config.name)
    for result in new_decisions(state, seen):
        metrics.increment_total(store, counter, result)
    try:
        totals = store.get_json(counter_key(counter))
    except ArtifactNotFound:
        totals = {}
    batch = metrics.MetricsBatch(pipeline=config.name, step="canary")
    weight = float((state.get("weights") or {}).get("canary", 0.0))
    batch.set("slipway_canary_weight", weight, model=config.model_name)
    for result in ROLLOUT_RESULTS:
        batch.set(
            "slipway_rollout_decisions_total",
            float(totals.get(result, 0.0)),
            model=config.model_name,
            result=result,
        )
    metrics.emit(batch, config.metrics)
