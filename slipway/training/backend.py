"""Which Keras backend trains, and the speed switches that depend on the device.

Keras 3 runs the same model code on TensorFlow or JAX, but the backend is fixed when ``keras`` is
first imported (``KERAS_BACKEND``) - and importing TensorFlow imports Keras - so
``select_backend`` must run before either is imported; the train step calls it first thing. Decisions, measured on this project's reference MLP
(``bench/bench_training.py``):

* CPU: JAX with NumPy input trains about twice as fast as TensorFlow with tf.data; XLA
  ``jit_compile`` made TensorFlow 3x slower; bfloat16 did not help either backend.
* GPU: the GPU image is TensorFlow's CUDA build (JAX there is CPU-only), so TensorFlow with
  tf.data, XLA and mixed float16.
* Several workers or GPUs (tf.distribute strategies) need TensorFlow.
* JAX here is one process on one device, so its random bits (weight initialisers, the dropout
  masks inside the train step) use the non-partitionable threefry: compiling and running them
  is cheaper than the sharding-friendly variant JAX defaults to (a 10-epoch run of the reference
  model 0.5-1 s faster on this CPU; same distributions, seeded and reproducible all the same).

* JAX keeps its compiled programs in ``training.compilation_cache``, so a scheduled retraining of
  the same architecture skips most of XLA's compilation.

``auto`` settings resolve to those choices; explicit settings are obeyed.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from slipway.config import TrainingConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceSettings:
    backend: str  # the backend Keras actually runs on
    gpu: bool
    mixed_precision: str  # "off" or the compute dtype
    jit_compile: bool
    steps_per_execution: int

    @property
    def policy(self) -> str:
        return "float32" if self.mixed_precision == "off" else f"mixed_{self.mixed_precision}"


def gpu_visible() -> bool:
    """An NVIDIA GPU is attached, found without importing TensorFlow (which imports Keras).

    The NVIDIA container runtime (and the device plugin on Kubernetes) exposes ``/dev/nvidiaN``;
    ``CUDA_VISIBLE_DEVICES`` set to empty or ``-1`` hides them, as it does for CUDA.
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1"):
        return False
    return any(Path("/dev").glob("nvidia[0-9]*"))


def wanted_backend(training: TrainingConfig, *, num_workers: int = 1, gpu: bool | None = None) -> str:
    """The backend ``training.backend`` asks for on this machine (a pure decision given ``gpu``)."""
    if training.backend != "auto":
        return training.backend
    if num_workers > 1 or training.strategy in ("mirrored", "multi_worker"):
        return "tensorflow"
    if gpu if gpu is not None else gpu_visible():
        return "tensorflow"
    return "jax" if importlib.util.find_spec("jax") is not None else "tensorflow"


def select_backend(training: TrainingConfig, *, num_workers: int = 1) -> str:
    """Set ``KERAS_BACKEND`` before Keras is imported; returns the backend Keras will use.

    If Keras is already imported (a test process, a notebook), it keeps its backend and a
    warning says the setting could not apply.
    """
    wanted = wanted_backend(training, num_workers=num_workers)
    if "keras" in sys.modules:
        import keras

        actual = keras.backend.backend()
        if actual != wanted:
            log.warning("Keras was already imported with backend %s; %s cannot apply", actual, wanted)
        return actual
    os.environ["KERAS_BACKEND"] = wanted
    return wanted


def device_settings(training: TrainingConfig) -> DeviceSettings:
    """Resolve the ``auto`` switches once Keras is imported (call after ``select_backend``)."""
    import keras

    backend = keras.backend.backend()
    gpu = _tensorflow_gpu() if backend == "tensorflow" else _jax_gpu() if backend == "jax" else False
    mixed = training.mixed_precision
    if mixed == "auto":
        mixed = "float16" if gpu else "off"
    jit = training.jit_compile == "on" or (training.jit_compile == "auto" and gpu)
    if backend == "jax":
        jit = True  # JAX always compiles with XLA; Keras' flag only chooses eager debugging
        _single_device_random_bits()
        _persistent_compilation_cache(training.compilation_cache)
    return DeviceSettings(
        backend=backend,
        gpu=gpu,
        mixed_precision=mixed,
        jit_compile=jit,
        steps_per_execution=training.steps_per_execution,
    )


def _single_device_random_bits() -> None:
    """Before the first random op: threefry without the partitionable layout (one device)."""
    import jax

    jax.config.update("jax_threefry_partitionable", False)


def compilation_cache_folder(configured: str | None) -> str:
    """The configured folder; unset: this process's ``$SLIPWAY_COMPILATION_CACHE`` or the default.

    Resolved where training runs, not where the config was read: a pod gets the config by value
    from the Airflow worker but has its own writable scratch folder.
    """
    if configured is not None:
        return configured
    return os.environ.get("SLIPWAY_COMPILATION_CACHE", ".slipway/xla-cache")


def _persistent_compilation_cache(configured: str | None) -> None:
    """Reuse compiled XLA programs across runs (keyed by program, flags, JAX version, device).

    Every compilation is kept (JAX's default keeps only those over 1 s). A folder that cannot be
    created (a read-only root filesystem in a pod without a volume there) only costs the reuse.
    """
    folder = compilation_cache_folder(configured)
    if not folder:
        return
    path = Path(folder).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("no XLA compilation cache at %s: %s", path, exc)
        return
    import jax

    jax.config.update("jax_compilation_cache_dir", str(path.resolve()))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _tensorflow_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def _jax_gpu() -> bool:
    import jax

    return any(d.platform == "gpu" for d in jax.devices())
