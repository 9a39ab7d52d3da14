"""Optuna as the search engine, driven ask/tell style from the records in the store.

Each trial process rebuilds an in-memory Optuna study from the study's records (finished trials
with their per-epoch figures; claimed but unfinished ones as RUNNING, so TPE's constant liar
keeps parallel trials apart), asks it for its own parameters, and later asks the pruner about
its own curve against the other trials' - re-reading the records each epoch, so a trial is
judged against every trial that finished while it trained. Nothing of Optuna's own storage is
shared between processes; the store's conditional writes are the only coordination.

The sampler is seeded with ``seed + trial number``: the same history gives the same params.
"""

from __future__ import annotations

import math
from typing import Any

import optuna
from optuna.trial import TrialState, create_trial

from slipway.config import TuningConfig
from slipway.tuning import study as records
from slipway.tuning.space import distributions, suggest

optuna.logging.set_verbosity(optuna.logging.WARNING)

_STATES = {
    records.COMPLETE: TrialState.COMPLETE,
    records.PRUNED: TrialState.PRUNED,
    records.FAILED: TrialState.FAIL,
}


def make_sampler(tuning: TuningConfig, number: int) -> optuna.samplers.BaseSampler:
    seed = tuning.seed + number
    if tuning.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=tuning.startup_trials, constant_liar=True, multivariate=True
    )


def make_pruner(tuning: TuningConfig) -> optuna.pruners.BasePruner:
    """Steps are epochs completed (1, 2, ...): no pruning while ``step <= warmup_epochs``."""
    cfg = tuning.pruner
    warmup = cfg.warmup_epochs + 1
    if cfg.kind == "none":
        return optuna.pruners.NopPruner()
    if cfg.kind == "percentile":
        return optuna.pruners.PercentilePruner(
            cfg.percentile, n_startup_trials=cfg.startup_trials, n_warmup_steps=warmup
        )
    return optuna.pruners.MedianPruner(n_startup_trials=cfg.startup_trials, n_warmup_steps=warmup)


def in_memory_study(tuning: TuningConfig, history: list[dict[str, Any]], number: int = 0) -> optuna.Study:
    """An Optuna study holding ``history`` (``StudyStore.records()``) as frozen trials."""
    study = optuna.create_study(
        direction="maximize", sampler=make_sampler(tuning, number), pruner=make_pruner(tuning)
    )
    dists = distributions(tuning.space)
    for record in history:
        params = {k: v for k, v in record["params"].items() if k in dists}
        result = record.get("result")
        state = _STATES.get(result["state"]) if result else TrialState.RUNNING
        if state is None:  # skipped: never trained, nothing to learn from
            continue
        value = result.get("value") if result else None
        if state == TrialState.COMPLETE and (value is None or not math.isfinite(value)):
            state = TrialState.FAIL
        curve = _curve(result.get("intermediate_values") if result else record.get("intermediate_values"))
        study.add_trial(
            create_trial(
                params=params,
                distributions={k: dists[k] for k in params},
                value=value if state == TrialState.COMPLETE else None,
                state=state,
                intermediate_values=curve,
            )
        )
    return study


def ask(tuning: TuningConfig, history: list[dict[str, Any]], number: int) -> dict[str, Any]:
    """Parameters for trial ``number`` given everything recorded so far."""
    study = in_memory_study(tuning, history, number)
    return suggest(study.ask(), tuning.space)


def should_prune(
    tuning: TuningConfig, history: list[dict[str, Any]], params: dict[str, Any], curve: dict[int, float]
) -> bool:
    """Would the pruner stop a trial with ``params`` whose validation curve so far is ``curve``?"""
    study = in_memory_study(tuning, history)
    dists = distributions(tuning.space)
    trial = create_trial(
        params={k: v for k, v in params.items() if k in dists},
        distributions={k: dists[k] for k in params if k in dists},
        state=TrialState.RUNNING,
        intermediate_values=_curve(curve),
    )
    return bool(study.pruner.prune(study, trial))


def _curve(values: dict[Any, Any] | None) -> dict[int, float]:
    return {int(step): float(v) for step, v in (values or {}).items() if v is not None and math.isfinite(v)}
