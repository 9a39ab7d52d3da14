"""The tune-trial step: train one trial of the run's sweep (``python -m slipway tune-trial --trial N``).

One mapped Airflow task per trial slot runs this, as a local process or a pod. The slot's params
are sampled once (Optuna ask over the study's records) and claimed with put-if-absent; the
outcome is recorded once. So:

* a retry after a kill re-uses the claimed params and resumes from the trial's checkpoint;
* a retry after success returns the recorded outcome without training again;
* a trial that starts after the sweep's wall-time limit is recorded as ``skipped``.

Selection uses the validation split only: the objective and the pruner's figures are the
per-epoch ``val_accuracy``; the test split and the golden set are never read here.
A crash is written to ``attempts/<k>.json`` and re-raised (non-zero exit: Airflow retries);
a loss that turns NaN is a deterministic outcome and recorded as a ``failed`` trial.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
import traceback
from typing import Any

from slipway.errors import BadInputError, StepInputMissing
from slipway.layout import result_folder
from slipway.metrics import MetricsBatch
from slipway.results import TuneTrialResult
from slipway.steps.context import RunContext
from slipway.store import ArtifactNotFound
from slipway.tuning import study as records
from slipway.tuning.study import StudyStore

log = logging.getLogger(__name__)


def study_for(ctx: RunContext) -> StudyStore:
    return StudyStore(ctx.store, ctx.key("tune", "study"))


def study_id_for(ctx: RunContext) -> str:
    return ctx.prefix.removeprefix("runs/").replace("/", "-")


def run(ctx: RunContext, batch: MetricsBatch, trial: int) -> TuneTrialResult:
    """Run (or find already recorded) trial slot ``trial`` of the run's study."""
    result = TuneTrialResult.model_validate(_run_trial(ctx, batch, trial))
    ctx.write_result(result_folder("tune-trial", {"trial": trial}), result)  # what the operator reads
    return result


def _run_trial(ctx: RunContext, batch: MetricsBatch, trial: int) -> dict[str, Any]:
    tuning = ctx.config.tuning
    if tuning is None:
        raise BadInputError(f"pipeline {ctx.config.name!r} has no 'tuning' section")
    _select_backend(tuning.keras_backend)
    study = study_for(ctx)
    try:
        index = study.read_index()
    except ArtifactNotFound:
        raise StepInputMissing(f"no study for run {ctx.run_id!r}: run the tune setup task first") from None
    if str(trial) not in index["trials"]:
        raise BadInputError(
            f"trial {trial} is not a slot of study {index['study_id']} ({len(index['trials'])})"
        )

    done = study.read_result(trial)
    if done is not None:
        log.info("trial %d already recorded as %s: nothing to do", trial, done["state"])
        return done
    if index.get("finalized"):
        entry = index["trials"][str(trial)]
        log.warning("study %s is finalized; trial %d stays %s", index["study_id"], trial, entry.get("state"))
        return {"number": trial, "study_id": index["study_id"], **entry}
    claim = study.read_claim(trial)
    deadline = index.get("deadline_at")
    if claim is None and deadline is not None and time.time() > deadline:
        log.info("trial %d not started: the sweep's wall-time limit has passed", trial)
        return study.record_result(
            trial,
            _result(index, trial, {}, records.SKIPPED, reason="wall-time limit passed before it started"),
        )
    if claim is None:
        from slipway.tuning.engine import ask

        params = ask(tuning, study.records(exclude=trial), trial)
        claim = study.claim(trial, params, {"claimed_at": time.time(), "sampler": tuning.sampler})
    params = claim["params"]
    attempt = study.start_attempt(trial)
    log.info("trial %d (attempt %d) of study %s: %s", trial, attempt, index["study_id"], params)
    try:
        result = _fit(ctx, study, index, trial, params, attempt)
    except Exception:
        study.record_crash(trial, attempt, traceback.format_exc())
        raise
    result = study.record_result(trial, result)
    batch.set("slipway_training_duration_seconds", result["duration_s"], model=ctx.config.model_name)
    return result


def _fit(
    ctx: RunContext,
    study: StudyStore,
    index: dict[str, Any],
    trial: int,
    params: dict[str, Any],
    attempt: int,
) -> dict[str, Any]:
    import keras

    from slipway.data import load_snapshot
    from slipway.training.trainer import train
    from slipway.tuning.space import training_for

    config = ctx.config
    tuning = config.tuning
    assert tuning is not None
    ingest = ctx.ingest_result()
    snapshot = load_snapshot(ctx.store, ingest.snapshot_key)
    if not len(snapshot.validation):
        raise BadInputError("the snapshot has no validation split: trials are selected on it")
    trial_config = config.model_copy(update={"training": training_for(params, config.training)})
    fingerprint = f"{trial_config.fingerprint()}-{ingest.snapshot_hash[:16]}"
    checkpoint_prefix = study.trial_key(trial, "checkpoint")
    pruning = _pruning_callback(
        study, tuning, trial, params, _resumed_curve(ctx, checkpoint_prefix, fingerprint)
    )
    pruning.deadline = index.get("deadline_at")
    outcome = train(
        trial_config,
        snapshot,
        store=ctx.store,
        checkpoint_prefix=checkpoint_prefix,
        fingerprint=fingerprint,
        extra_callbacks=[keras.callbacks.TerminateOnNaN(), pruning],
    )
    curve = pruning.curve
    epochs = len(outcome.history.get("val_accuracy", []))
    value = curve.get(max(curve)) if curve else None
    state, reason = records.COMPLETE, ""
    if value is None or not math.isfinite(value) or any(not math.isfinite(v) for v in outcome.final.values()):
        state, reason, value = records.FAILED, "the loss became NaN or infinite", None
    elif pruning.pruned_reason:
        state, reason = records.PRUNED, pruning.pruned_reason
    elif pruning.stopped_reason:
        reason = pruning.stopped_reason
    result = _result(index, trial, params, state, reason=reason)
    result.update(
        value=value,
        intermediate_values={str(k): v for k, v in sorted(curve.items())},
        history=outcome.history,
        epochs_completed=epochs,
        resumed_from_epoch=outcome.resumed_from_epoch,
        duration_s=round(outcome.duration_s, 3),
        attempt=attempt,
        keras_backend=keras.backend.backend(),
    )
    if state == records.COMPLETE:
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "model.keras"
            outcome.model.save(local)
            key = study.trial_key(trial, "model/model.keras")
            ctx.store.upload_file(local, key)
        result["model_key"] = study.trial_key(trial, "model")
    log.info("trial %d %s: val_accuracy %s after %d epochs %s", trial, state, value, epochs, reason)
    return result


def _result(
    index: dict[str, Any], trial: int, params: dict[str, Any], state: str, *, reason: str
) -> dict[str, Any]:
    return {
        "study_id": index["study_id"],
        "number": trial,
        "params": params,
        "state": state,
        "reason": reason,
        "value": None,
        "objective": records.OBJECTIVE,
        "intermediate_values": {},
        "epochs_completed": 0,
        "duration_s": 0.0,
        "finished_at": time.time(),
    }


def _resumed_curve(ctx: RunContext, prefix: str, fingerprint: str) -> dict[int, float]:
    """Validation figures of the epochs a resumed trial already has (from its checkpoint state)."""
    try:
        state = ctx.store.get_json(f"{prefix}/state.json")
    except ArtifactNotFound:
        return {}
    if state.get("fingerprint") != fingerprint:
        return {}
    values = state.get("history", {}).get("val_accuracy", [])
    return {i + 1: float(v) for i, v in enumerate(values)}


def _select_backend(backend: str | None) -> None:
    if backend is None:
        return
    if "keras" in sys.modules and os.environ.get("KERAS_BACKEND", "tensorflow") != backend:
        log.warning("keras is already loaded; cannot switch this process to the %s backend", backend)
        return
    os.environ["KERAS_BACKEND"] = backend


def _pruning_callback(
    study: StudyStore, tuning: Any, trial: int, params: dict[str, Any], curve: dict[int, float]
) -> Any:
    """A Keras callback that, after each epoch, records the validation figure and asks the pruner.

    Built here (not at import) so the Keras backend is chosen before Keras is first imported.
    """
    import keras

    from slipway.tuning.engine import should_prune

    class PruningCallback(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.curve: dict[int, float] = dict(curve)
            self.pruned_reason = ""
            self.stopped_reason = ""
            self.deadline: float | None = None

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            value = float((logs or {}).get("val_accuracy", float("nan")))
            self.curve[epoch + 1] = value
            study.write_progress(trial, {"epoch": epoch + 1, "val_accuracy": self.curve, "at": time.time()})
            if not math.isfinite(value) or epoch + 1 >= int(params["epochs"]):
                return  # NaN is handled as a failure; the last epoch has nothing left to save
            if should_prune(tuning, study.records(exclude=trial), params, self.curve):
                self.pruned_reason = f"pruned after epoch {epoch + 1} (val_accuracy {value:.4f})"
                log.info("trial %d %s", trial, self.pruned_reason)
                self.model.stop_training = True
            elif self.deadline is not None and time.time() > self.deadline:
                # Not pruned: its model is valid and may still be the best one found in the budget.
                self.stopped_reason = f"stopped after epoch {epoch + 1}: the sweep's wall-time limit passed"
                log.info("trial %d %s", trial, self.stopped_reason)
                self.model.stop_training = True

    return PruningCallback()
