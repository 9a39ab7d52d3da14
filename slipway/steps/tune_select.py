"""The tune-select step: close the sweep, make its best trial the run's candidate, write the report.

Runs once every trial task is done (complete, pruned, failed or killed after its retries).
``StudyStore.finalize`` gives every slot its final state from the create-only records; the best
*complete* trial by validation accuracy (never the test split) is re-exported in the serving
layout to ``train/model/`` with a ``train/result.json`` like the train step's plus a ``sweep``
section (study id, trial, params), so evaluate, the gate and register treat it like any
candidate and record where it came from. Output: ``tune-select/result.json`` and ``tune/report.html``.
"""

from __future__ import annotations

import logging
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from slipway.errors import BadInputError
from slipway.metrics import MetricsBatch
from slipway.results import SweepOrigin, TrainResult, TuneSelectResult
from slipway.steps.context import RunContext
from slipway.steps.tune_trial import study_for
from slipway.tuning import study as records
from slipway.version import code_version

log = logging.getLogger(__name__)


class NoCompleteTrial(BadInputError):
    """Every trial was pruned, failed or skipped: there is no candidate to evaluate."""


def run(ctx: RunContext, batch: MetricsBatch) -> TuneSelectResult:
    config = ctx.config
    study = study_for(ctx)
    index = study.finalize()
    trial_results = {n: study.read_result(n) for n in study.slot_numbers()}
    counts = Counter(entry["state"] for entry in index["trials"].values())
    for state in (records.COMPLETE, records.PRUNED, records.FAILED, records.SKIPPED):
        batch.set("slipway_tuning_trials", counts.get(state, 0), model=config.model_name, state=state)
    report_key = ctx.key("tune", "report.html")
    ctx.store.put_bytes(report_key, _report(ctx, index, trial_results).encode("utf-8"))

    best = records.best_trial(index)
    if best is None:
        ctx.write_result(  # the report still explains what happened to every trial
            "tune-select",
            TuneSelectResult(study_id=index["study_id"], trials=dict(counts), report_key=report_key),
        )
        raise NoCompleteTrial(
            f"no trial of study {index['study_id']} completed ({dict(counts)}): see "
            f"{ctx.store.uri(report_key)}"
        )
    number, _ = best
    trial = trial_results[number]
    assert trial is not None
    batch.set("slipway_tuning_best_value", trial["value"], model=config.model_name)
    sweep = {
        "study_id": index["study_id"],
        "study_key": study.index_key,
        "trial": number,
        "params": trial["params"],
        "objective": records.OBJECTIVE,
        "value": trial["value"],
        "trials": dict(counts),
    }
    train_result = _export_candidate(ctx, trial, sweep)
    result = TuneSelectResult(
        **sweep,
        model_key=train_result.model_key,
        report_key=report_key,
        report_uri=ctx.store.uri(report_key),
        trial_states={n: e["state"] for n, e in sorted(index["trials"].items(), key=lambda kv: int(kv[0]))},
    )
    ctx.write_result("tune-select", result)
    log.info(
        "study %s: best trial %d (val_accuracy %.4f) of %s; params %s",
        index["study_id"],
        number,
        trial["value"],
        dict(counts),
        trial["params"],
    )
    return result


def _export_candidate(ctx: RunContext, trial: dict[str, Any], sweep: dict[str, Any]) -> TrainResult:
    """The best trial's model in the serving layout at ``train/model/`` + ``train/result.json``."""
    import keras

    from slipway.training.trainer import export_model
    from slipway.tuning.space import training_for

    config = ctx.config
    ingest = ctx.ingest_result()
    trial_config = config.model_copy(update={"training": training_for(trial["params"], config.training)})
    fingerprint = f"{trial_config.fingerprint()}-{ingest.snapshot_hash[:16]}"
    final = {name: values[-1] for name, values in (trial.get("history") or {}).items() if values}
    metadata = {
        "model_name": config.model_name,
        "pipeline": config.name,
        "run_id": ctx.run_id,
        "snapshot_key": ingest.snapshot_key,
        "dataset_hash": ingest.snapshot_hash,
        "config": trial_config.model_dump(mode="json", exclude={"source_path"}),
        "config_fingerprint": fingerprint,
        "code_version": code_version(),
        "input_shape": list(config.data.input_shape),
        "num_classes": config.data.num_classes,
        "class_names": config.data.class_names,
        "history": trial.get("history"),
        "final_metrics": final,
        "epochs_completed": trial["epochs_completed"],
        "training_seconds": trial["duration_s"],
        "sweep": sweep,
    }
    model_prefix = ctx.key("train", "model")
    with tempfile.TemporaryDirectory() as tmp:
        local = ctx.store.download_file(f"{trial['model_key']}/model.keras", Path(tmp) / "trial.keras")
        model = keras.saving.load_model(local)
        export_model(model, Path(tmp) / "model", metadata)
        ctx.store.upload_dir(Path(tmp) / "model", model_prefix)
    result = TrainResult(
        model_key=model_prefix,
        model_uri=ctx.store.uri(model_prefix),
        config_fingerprint=fingerprint,
        snapshot_hash=ingest.snapshot_hash,
        epochs_completed=trial["epochs_completed"],
        resumed_from_epoch=trial.get("resumed_from_epoch", 0),
        final_metrics=final,
        history=trial.get("history") or {},
        training_seconds=trial["duration_s"],
        code_version=code_version(),
        sweep=SweepOrigin(**sweep),
    )
    ctx.write_result("train", result)
    return result


def _report(ctx: RunContext, index: dict[str, Any], trials: dict[int, dict[str, Any] | None]) -> str:
    from slipway.tuning.report import render_study_report

    return render_study_report(ctx.config, index, trials)
