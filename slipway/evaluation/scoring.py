"""Run a Keras model over a test split: probabilities, inference latency and size on disk.

Latency is measured the way a server sees it: one compiled forward pass on a batch of a fixed
size (``predict_on_batch``, the same traced function ``predict`` uses, without the tf.data
pipeline and progress bar around it). A few warm-up calls absorb tracing and allocation, then
the median of several timed calls is reported, because a shared machine's scheduler noise shows
up as outliers that a mean would absorb.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

MODEL_FILE = "model.keras"


@dataclass(frozen=True)
class LatencyStats:
    """Median wall time of one forward pass at ``batch_size`` (milliseconds)."""

    batch_size: int
    ms_per_batch: float
    ms_per_example: float
    timed_batches: int
    warmup_batches: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelSize:
    """Bytes of the Keras file alone and of every file in the model's folder (SavedModel too)."""

    model_file_bytes: int
    artifact_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "model_file_mb": self.model_file_bytes / 1_000_000}


@dataclass(frozen=True)
class ScoredModel:
    """A model's outputs on the test split plus its cost figures."""

    probabilities: np.ndarray  # (n, k) float32
    latency: LatencyStats
    size: ModelSize | None
    predict_seconds: float  # wall time to predict the whole split


def load_keras_model(model_dir: str | Path) -> Any:
    """Load ``<model_dir>/model.keras`` for inference (no optimizer state: faster, fewer deps)."""
    import keras

    path = Path(model_dir) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {MODEL_FILE} in {model_dir}: is this a Slipway model folder?")
    return keras.saving.load_model(path, compile=False)


def predict_probabilities(model: Any, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Softmax outputs for every row of ``x``, computed in batches to bound memory."""
    outputs = [
        np.asarray(model.predict_on_batch(x[start : start + batch_size]), dtype=np.float32)
        for start in range(0, len(x), batch_size)
    ]
    return np.concatenate(outputs, axis=0)


def measure_latency(
    model: Any, x: np.ndarray, *, batch_size: int = 32, warmup: int = 3, repeats: int = 20
) -> LatencyStats:
    """Median time of ``repeats`` forward passes on one batch of ``batch_size`` rows of ``x``."""
    batch = x[:batch_size]
    if len(batch) < batch_size:  # a tiny test set: tile it so the batch size is what was asked for
        batch = np.resize(x, (batch_size, *x.shape[1:])).astype(x.dtype)
    for _ in range(warmup):
        model.predict_on_batch(batch)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.predict_on_batch(batch)  # returns numpy: the computation has finished
        timings.append(time.perf_counter() - started)
    ms = float(np.median(timings) * 1000.0)
    return LatencyStats(
        batch_size=batch_size,
        ms_per_batch=ms,
        ms_per_example=ms / batch_size,
        timed_batches=repeats,
        warmup_batches=warmup,
    )


def model_size(model_dir: str | Path) -> ModelSize:
    """Size on disk of a model folder as laid out by the train step."""
    root = Path(model_dir)
    keras_file = root / MODEL_FILE
    return ModelSize(
        model_file_bytes=keras_file.stat().st_size if keras_file.is_file() else 0,
        artifact_bytes=sum(p.stat().st_size for p in root.rglob("*") if p.is_file()),
    )


def score_model(
    model: Any,
    x: np.ndarray,
    *,
    model_dir: str | Path | None = None,
    latency_batch_size: int = 32,
    predict_batch_size: int = 512,
) -> ScoredModel:
    """Predict the whole split, then time single batches; size when ``model_dir`` is given."""
    started = time.perf_counter()
    probabilities = predict_probabilities(model, x, predict_batch_size)
    predict_seconds = time.perf_counter() - started
    return ScoredModel(
        probabilities=probabilities,
        latency=measure_latency(model, x, batch_size=latency_batch_size),
        size=model_size(model_dir) if model_dir is not None else None,
        predict_seconds=predict_seconds,
    )
