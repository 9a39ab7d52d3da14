"""Checkpoints in the artifact store, so training survives preemption.

After every epoch the chief saves the whole model (weights *and* optimizer state) as
``epoch-NNNN.keras`` under the run's checkpoint prefix, then writes ``state.json`` naming it.
The state is written last, so it always points at a complete file: a pod killed at any moment
resumes from the last epoch whose state was written, with the same optimizer moments.

The model is serialised on the training thread (it reads the variables), but the upload, the
state and the clean-up go to one background writer, in order, while the next epoch trains - on
S3 an upload can take longer than an epoch. Training waits for the writer at its end and fails
if a checkpoint could not be stored.
A checkpoint made with different settings (another config fingerprint or dataset) is ignored.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from slipway.store import ArtifactNotFound, ArtifactStore

log = logging.getLogger(__name__)


@dataclass
class ResumePoint:
    model: keras.Model
    epoch: int
    history: dict[str, list[float]] = field(default_factory=dict)


def load_checkpoint(store: ArtifactStore, prefix: str, fingerprint: str) -> ResumePoint | None:
    """The last complete checkpoint for these settings, or None to start from scratch."""
    try:
        state = store.get_json(f"{prefix}/state.json")
    except ArtifactNotFound:
        return None
    if state.get("fingerprint") != fingerprint:
        log.warning("ignoring checkpoint at %s: made with other settings", store.uri(prefix))
        return None
    with tempfile.TemporaryDirectory() as tmp:
        local = store.download_file(f"{prefix}/{state['file']}", Path(tmp) / state["file"])
        model = keras.saving.load_model(local)
    log.info("resuming from epoch %d (%s)", state["epoch"], store.uri(f"{prefix}/{state['file']}"))
    return ResumePoint(model=model, epoch=int(state["epoch"]), history=state.get("history", {}))


class StoreCheckpoint(keras.callbacks.Callback):
    """Keras callback: after each epoch, persist the model and the epoch count to the store."""

    def __init__(
        self,
        store: ArtifactStore,
        prefix: str,
        fingerprint: str,
        *,
        history: dict[str, list[float]] | None = None,
        is_chief: bool = True,
    ) -> None:
        super().__init__()
        self.store = store
        self.prefix = prefix.rstrip("/")
        self.fingerprint = fingerprint
        self.history: dict[str, list[float]] = {k: list(v) for k, v in (history or {}).items()}
        self.is_chief = is_chief
        self._writer: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(float(value))
        name = f"epoch-{epoch + 1:04d}.keras"
        if not self.is_chief:
            # Under MultiWorkerMirroredStrategy saving runs collective ops: every worker must
            # save, in step with the chief. A worker's copy goes to a temporary folder and away.
            with tempfile.TemporaryDirectory() as tmp:
                self.model.save(Path(tmp) / name)
            return
        self._raise_if_a_write_failed()
        folder = Path(tempfile.mkdtemp(prefix="slipway-ckpt-"))
        self.model.save(folder / name)
        state = {
            "epoch": epoch + 1,
            "file": name,
            "fingerprint": self.fingerprint,
            "history": {k: list(v) for k, v in self.history.items()},
        }
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slipway-checkpoint")
        self._pending.append(self._writer.submit(self._store_checkpoint, folder, name, state))

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.flush()

    def flush(self, *, raise_errors: bool = True) -> None:
        """Wait until every checkpoint is in the store; raise the first write that failed.

        ``raise_errors=False`` when training already failed: its error is the one to report.
        """
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        try:
            self._raise_if_a_write_failed()
        except Exception:
            if raise_errors:
                raise
            log.exception("a checkpoint could not be stored")

    def _raise_if_a_write_failed(self) -> None:
        done = [f for f in self._pending if f.done()]
        self._pending = [f for f in self._pending if not f.done()]
        for future in done:
            future.result()  # re-raises the writer's error on the training thread

    def _store_checkpoint(self, folder: Path, name: str, state: dict[str, Any]) -> None:
        try:
            self.store.upload_file(folder / name, f"{self.prefix}/{name}")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self.store.put_json(f"{self.prefix}/state.json", state)
        # Older epochs (including those of a run this one resumed) are no longer needed.
        for key in self.store.list(self.prefix):
            if key.endswith(".keras") and key.rsplit("/", 1)[-1] != name:
                self.store.delete(key)
