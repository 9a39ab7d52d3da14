"""Checkpoints in the artifact store, so training survives preemption.

After every epoch the chief saves the whole model (weights *and* optimizer state) as
``epoch-NNNN.keras`` under the run's checkpoint prefix, then writes ``state.json`` naming it.
The state is written last, so it always points at a complete file: a pod killed at any moment
resumes from the last epoch whose state was written, with the same optimizer moments.
A checkpoint made with different settings (another config fingerprint or dataset) is ignored.
"""

from __future__ import annotations

import logging
import tempfile
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
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / name
            self.model.save(local)
            self.store.upload_file(local, f"{self.prefix}/{name}")
        self.store.put_json(
            f"{self.prefix}/state.json",
            {"epoch": epoch + 1, "file": name, "fingerprint": self.fingerprint, "history": self.history},
        )
        # Older epochs (including those of a run this one resumed) are no longer needed.
        for key in self.store.list(self.prefix):
            if key.endswith(".keras") and key.rsplit("/", 1)[-1] != name:
                self.store.delete(key)
