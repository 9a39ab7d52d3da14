"""The train step: fit the configured model on the run's snapshot, export it, record how.

Idempotent: a retry after success returns the stored result without training again (same
snapshot and settings); a retry after a crash or preemption resumes from the last checkpoint.
Output: ``train/model/`` (serving layout, see ``training.trainer.export_model``) and
``train/result.json`` (``TrainResult``; a non-chief worker of multi-worker training writes nothing
and reports a ``TrainWorkerResult``).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from slipway.data import load_snapshot
from slipway.metrics import MetricsBatch
from slipway.results import ResultContractError, TrainResult, TrainWorkerResult
from slipway.steps.context import RunContext
from slipway.training.backend import select_backend
from slipway.training.distributed import cluster_role, ensure_tf_config
from slipway.version import code_version

log = logging.getLogger(__name__)


def run(ctx: RunContext, batch: MetricsBatch) -> TrainResult | TrainWorkerResult:
    config = ctx.config
    ingest = ctx.ingest_result()
    fingerprint = f"{config.fingerprint()}-{ingest.snapshot_hash[:16]}"

    previous = _previous_result(ctx, fingerprint)
    if previous is not None:
        log.info("train already completed for this run and settings: reusing %s", previous.model_uri)
        return previous

    # Before anything imports Keras: the backend is fixed at its first import.
    ensure_tf_config()  # a pod of an Indexed Job derives it from JOB_COMPLETION_INDEX
    role = cluster_role()
    select_backend(config.training, num_workers=role.num_workers)
    from slipway.training.trainer import export_model, train

    snapshot = load_snapshot(ctx.store, ingest.snapshot_key)
    log.info(
        "training %s on %d examples (validation %d), %d epochs, batch %d",
        config.model_name,
        len(snapshot.train),
        len(snapshot.validation),
        config.training.epochs,
        config.training.batch_size,
    )
    outcome = train(
        config,
        snapshot,
        store=ctx.store,
        checkpoint_prefix=ctx.layout.checkpoint,
        fingerprint=fingerprint,
    )
    checksum = weights_checksum(outcome.model)
    log.info("worker %d/%d trained weights checksum %s", role.task_index, role.num_workers, checksum)
    if not outcome.is_chief:
        # Only the chief writes the model and the result. Exporting runs collective ops under
        # MultiWorkerMirroredStrategy, so a worker exports too, in step, into a throwaway folder.
        with tempfile.TemporaryDirectory() as tmp:
            export_model(outcome.model, Path(tmp) / "model", {})
        return TrainWorkerResult(epochs_completed=outcome.epochs_completed, weights_checksum=checksum)

    model_prefix = ctx.layout.model
    metadata = {
        "model_name": config.model_name,
        "pipeline": config.name,
        "run_id": ctx.run_id,
        "snapshot_key": ingest.snapshot_key,
        "dataset_hash": ingest.snapshot_hash,
        "config": config.model_dump(mode="json", exclude={"source_path"}),
        "config_fingerprint": fingerprint,
        "code_version": code_version(),
        "input_shape": list(config.data.input_shape),
        "num_classes": config.data.num_classes,
        "class_names": config.data.class_names,
        "history": outcome.history,
        "final_metrics": outcome.final,
        "epochs_completed": outcome.epochs_completed,
        "resumed_from_epoch": outcome.resumed_from_epoch,
        "training_seconds": round(outcome.duration_s, 3),
    }
    with tempfile.TemporaryDirectory() as tmp:
        export_model(outcome.model, Path(tmp) / "model", metadata)
        ctx.store.upload_dir(Path(tmp) / "model", model_prefix)

    batch.set("slipway_training_epochs", outcome.epochs_completed, model=config.model_name)
    batch.set("slipway_training_duration_seconds", outcome.duration_s, model=config.model_name)
    _set_throughput(batch, config.model_name, outcome, len(snapshot.train))
    _set_class_fractions(batch, config.model_name, snapshot.train.y, config.data.num_classes)
    result = TrainResult(
        model_key=model_prefix,
        model_uri=ctx.store.uri(model_prefix),
        config_fingerprint=fingerprint,
        snapshot_hash=ingest.snapshot_hash,
        epochs_completed=outcome.epochs_completed,
        resumed_from_epoch=outcome.resumed_from_epoch,
        final_metrics=outcome.final,
        history=outcome.history,
        training_seconds=round(outcome.duration_s, 3),
        code_version=code_version(),
        backend=outcome.backend,
        workers=role.num_workers,
        weights_checksum=checksum,
        mixed_precision=outcome.mixed_precision,
        jit_compile=outcome.jit_compile,
    )
    ctx.write_result("train", result)
    return result


def _previous_result(ctx: RunContext, fingerprint: str) -> TrainResult | None:
    """This run's stored result for the same settings; an unreadable old result is trained over."""
    try:
        previous = ctx.find_result("train", TrainResult)
    except ResultContractError as exc:
        log.warning("ignoring the stored train result: %s", exc)
        return None
    return previous if previous is not None and previous.config_fingerprint == fingerprint else None


def _set_throughput(batch: MetricsBatch, model: str, outcome: Any, examples: int) -> None:
    """Samples/s over the epochs this process trained (a resumed run does not count old epochs)."""
    epochs = outcome.epochs_completed - outcome.resumed_from_epoch
    if epochs > 0 and outcome.duration_s > 0:
        batch.set("slipway_training_samples_per_second", examples * epochs / outcome.duration_s, model=model)
    if "loss" in outcome.final:
        batch.set("slipway_training_final_loss", outcome.final["loss"], model=model)


def _set_class_fractions(batch: MetricsBatch, model: str, labels: Any, num_classes: int) -> None:
    """The training label distribution: what served predictions are compared with (drift alert)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)
    total = max(int(counts.sum()), 1)
    for cls, count in enumerate(counts):
        batch.set("slipway_training_class_fraction", count / total, model=model, **{"class": str(cls)})


def weights_checksum(model: Any) -> str:
    """Hash of the trained weights: workers that trained one model together agree on it."""
    import hashlib

    digest = hashlib.sha256()
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()[:16]
