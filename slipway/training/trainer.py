"""Fit a model on a snapshot, resumably, and export it for serving.

``train`` is the whole training procedure independent of where it runs (local process, GPU pod,
one worker of an Indexed Job): seed everything, resume from the store's checkpoint if one
matches, fit, and return the model with its per-epoch curves. On TensorFlow, Keras ``fit`` on a
prefetching tf.data pipeline (sharded across workers); on JAX, ``fit`` on seeded NumPy batches
(``training/batches.py``; see ``training/backend.py`` for the choice of backend).
``export_model`` writes the serving layout: a TF-Serving-loadable SavedModel (``saved_model.pb``,
``variables/``) plus the native ``model.keras`` and ``metadata.json`` in the same folder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from slipway.config import PipelineConfig, TrainingConfig
from slipway.data.dataset import Snapshot
from slipway.store import ArtifactStore
from slipway.training.backend import device_settings
from slipway.training.batches import ShuffledBatches, validation_batch_size
from slipway.training.checkpoint import StoreCheckpoint, load_checkpoint
from slipway.training.distributed import (
    ClusterRole,
    cluster_role,
    make_strategy,
    patch_keras_multi_worker_logs,
)
from slipway.training.input import make_dataset
from slipway.training.models import build_model

log = logging.getLogger(__name__)


@dataclass
class TrainingOutcome:
    model: keras.Model
    history: dict[str, list[float]]
    epochs_completed: int
    resumed_from_epoch: int
    duration_s: float
    is_chief: bool
    backend: str = "tensorflow"
    mixed_precision: str = "off"
    jit_compile: bool = False

    @property
    def final(self) -> dict[str, float]:
        """Last epoch's value of every curve (loss, accuracy, val_loss, val_accuracy)."""
        return {name: values[-1] for name, values in self.history.items() if values}


class _LogEpochs(keras.callbacks.Callback):
    """One readable line per epoch in the task log (Keras' progress bar is noise in a log file)."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        figures = " ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items()))
        log.info("epoch %d/%d %s", epoch + 1, self.params.get("epochs", 0), figures)


def train(
    config: PipelineConfig,
    snapshot: Snapshot,
    *,
    store: ArtifactStore,
    checkpoint_prefix: str,
    fingerprint: str,
    extra_callbacks: list[keras.callbacks.Callback] | None = None,
) -> TrainingOutcome:
    settings = config.training
    device = device_settings(settings)  # first: it may set how random bits are drawn
    keras.utils.set_random_seed(settings.seed)
    role = cluster_role()
    log.info(
        "Keras backend %s, %s, mixed precision %s, XLA %s, %d steps per execution",
        device.backend,
        "GPU" if device.gpu else "CPU",
        device.mixed_precision,
        "on" if device.jit_compile else "off",
        device.steps_per_execution,
    )
    started = time.monotonic()

    # One JAX process uses one device: tf.distribute strategies are TensorFlow's only.
    strategy = make_strategy(settings.strategy, role) if device.backend == "tensorflow" else None
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        resume = load_checkpoint(store, checkpoint_prefix, fingerprint)
        if resume is not None:
            model, initial_epoch, history = resume.model, resume.epoch, resume.history
        else:
            model = build_model(
                settings,
                tuple(config.data.input_shape),
                config.data.num_classes,
                policy=device.policy,
                jit_compile=device.jit_compile,
                # Keras 3.15's multi-step loop fails on a multi-worker distributed iterator.
                steps_per_execution=device.steps_per_execution if role.num_workers == 1 else 1,
            )
            initial_epoch, history = 0, {}

    checkpoint = StoreCheckpoint(
        store, checkpoint_prefix, fingerprint, history=history, is_chief=role.is_chief
    )
    callbacks = [checkpoint, _LogEpochs(), *(extra_callbacks or [])]
    try:
        _fit(model, snapshot, settings, device.backend, strategy, role, initial_epoch, callbacks)
    except BaseException:
        # The epochs that ended before the failure are stored before it propagates (a killed
        # process loses only the checkpoint being written; state.json names the one before).
        checkpoint.flush(raise_errors=False)
        raise
    return TrainingOutcome(
        model=model,
        history=checkpoint.history,
        epochs_completed=settings.epochs,
        resumed_from_epoch=initial_epoch,
        duration_s=time.monotonic() - started,
        is_chief=role.is_chief,
        backend=device.backend,
        mixed_precision=device.mixed_precision,
        jit_compile=device.jit_compile,
    )


def _fit(
    model: keras.Model,
    snapshot: Snapshot,
    settings: TrainingConfig,
    backend: str,
    strategy: Any,  # tf.distribute.Strategy on TensorFlow, None on JAX
    role: ClusterRole,
    initial_epoch: int,
    callbacks: list[keras.callbacks.Callback],
) -> None:
    """Keras ``fit`` from ``initial_epoch`` on the input pipeline that suits the backend."""
    if initial_epoch < settings.epochs and backend == "jax":
        # On JAX, NumPy batches go straight into device buffers; going through tf.data converts
        # every batch back to NumPy and halved the speed on the CPU. Full batches only (one
        # compiled shape), shuffled per (seed, epoch) so a resumed run draws the same batches.
        has_validation = len(snapshot.validation) > 0
        model.fit(
            ShuffledBatches(
                snapshot.train, settings.batch_size, seed=settings.seed, initial_epoch=initial_epoch
            ),
            validation_data=(snapshot.validation.x, snapshot.validation.y) if has_validation else None,
            validation_batch_size=validation_batch_size(len(snapshot.validation)),
            epochs=settings.epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            shuffle=False,  # ShuffledBatches shuffles the examples; Keras would only reorder batches
            verbose=0,
        )
    elif initial_epoch < settings.epochs and strategy is not None:
        has_validation = len(snapshot.validation) > 0
        seed = settings.seed + initial_epoch
        if role.num_workers > 1:
            # Keras 3.15's TF trainer peeks one distributed batch to build the model and fails on
            # MultiWorkerMirroredStrategy's PerReplica values; the model is already built under
            # the strategy, so skip the peek: Keras then takes the strategy from the scope.
            model._distribute_strategy = None
            patch_keras_multi_worker_logs()
        with strategy.scope():
            model.fit(
                make_dataset(snapshot.train, settings.batch_size, shuffle=True, seed=seed),
                validation_data=(
                    make_dataset(
                        snapshot.validation,
                        validation_batch_size(len(snapshot.validation)),
                        shuffle=False,
                        seed=seed,
                    )
                    if has_validation
                    else None
                ),
                epochs=settings.epochs,
                initial_epoch=initial_epoch,
                callbacks=callbacks,
                shuffle=False,  # tf.data shuffles (seeded); Keras' own flag would be ignored
                verbose=0,
            )


def export_model(model: keras.Model, out_dir: str | Path, metadata: dict[str, Any]) -> Path:
    """Write the serving layout into ``out_dir`` (which becomes registry version ``N/``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.export(str(out), format="tf_saved_model", verbose=False)
    model.save(out / "model.keras")
    (out / "metadata.json").write_text(json.dumps(metadata, indent=2, sort_keys=True, default=str) + "\n")
    return out
