"""The train step: fit the configured model on the run's snapshot, export it, record how.

Idempotent: a retry after success returns the stored result without training again (same
snapshot and settings); a retry after a crash or preemption resumes from the last checkpoint.
Output: ``train/model/`` (serving layout, see ``training.trainer.export_model``) and
``train/result.json``.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from slipway.data import load_snapshot
from slipway.metrics import MetricsBatch
from slipway.steps.context import RunContext
from slipway.store import ArtifactNotFound
from slipway.training.backend import select_backend
from slipway.training.distributed import cluster_role, ensure_tf_config
from slipway.version import code_version

log = logging.getLogger(__name__)


def run(ctx: RunContext, batch: MetricsBatch) -> dict[str, Any]:
    config = ctx.config
    ingest = ctx.read_result("ingest")
    fingerprint = f"{config.fingerprint()}-{ingest['snapshot_hash'][:16]}"

    previous = _previous_result(ctx, fingerprint)
    if previous is not None:
        log.info("train already completed for this run and settings: reusing %s", previous["model_uri"])
        return previous

    # Before anything imports Keras: the backend is fixed at its first import.
    ensure_tf_config()  # a pod of an Indexed Job derives it from JOB_COMPLETION_INDEX
    role = cluster_role()
    select_backend(config.training, num_workers=role.num_workers)
    from slipway.training.trainer import export_model, train

    snapshot = load_snapshot(ctx.store, ingest["snapshot_key"])
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
        checkpoint_prefix=ctx.key("train", "checkpoint"),
        fingerprint=fingerprint,
    )
    checksum = weights_checksum(outcome.model)
    log.info("worker %d/%d trained weights checksum %s", role.task_index, role.num_workers, checksum)
    if not outcome.is_chief:
        # Only the chief writes the model and the result. Exporting runs collective ops under
        # MultiWorkerMirroredStrategy, so a worker exports too, in step, into a throwaway folder.
        with tempfile.TemporaryDirectory() as tmp:
            export_model(outcome.model, Path(tmp) / "model", {})
        return {"role": "worker", "epochs_completed": outcome.epochs_completed, "weights_checksum": checksum}

    model_prefix = ctx.key("train", "model")
    metadata = {
        "model_name": config.model_name,
        "pipeline": config.name,
        "run_id": ctx.run_id,
        "snapshot_key": ingest["snapshot_key"],
        "dataset_hash": ingest["snapshot_hash"],
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
    result = {
        "model_key": model_prefix,
        "model_uri": ctx.store.uri(model_prefix),
        "config_fingerprint": fingerprint,
        "snapshot_hash": ingest["snapshot_hash"],
        "epochs_completed": outcome.epochs_completed,
        "resumed_from_epoch": outcome.resumed_from_epoch,
        "final_metrics": outcome.final,
        "history": outcome.history,
        "training_seconds": round(outcome.duration_s, 3),
        "code_version": code_version(),
        "backend": outcome.backend,
        "workers": role.num_workers,
        "weights_checksum": checksum,
        "mixed_precision": outcome.mixed_precision,
        "jit_compile": outcome.jit_compile,
    }
    ctx.write_result("train", result)
    return result


def _previous_result(ctx: RunContext, fingerprint: str) -> dict[str, Any] | None:
    try:
        previous = ctx.store.get_json(ctx.result_key("train"))
    except ArtifactNotFound:
        return None
    return previous if previous.get("config_fingerprint") == fingerprint else None


def weights_checksum(model: Any) -> str:
    """Hash of the trained weights: workers that trained one model together agree on it."""
    import hashlib

    import numpy as np

    digest = hashlib.sha256()
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()[:16]
