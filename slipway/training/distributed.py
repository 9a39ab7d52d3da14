"""Distribution strategy from ``training.strategy`` and the ``TF_CONFIG`` a pod is given.

Multi-worker training runs one pod per worker (an Indexed Job); every worker computes, but only
the chief (worker 0) writes checkpoints and the model, so workers never race on the store.

A Job's pods do not get ``TF_CONFIG`` from Kubernetes: each builds it (``tf_config_from_job``)
from ``JOB_COMPLETION_INDEX`` (set by the Job controller in Indexed mode) and the Job's shape,
passed as ``SLIPWAY_JOB_NAME``, ``SLIPWAY_JOB_SERVICE``, ``SLIPWAY_WORKERS`` and
``SLIPWAY_WORKER_PORT``. Worker *i*'s stable DNS name is ``<job>-<i>.<service>``: the Job sets
each pod's hostname to ``<job>-<index>`` and the pod template's ``subdomain`` is the headless
Service, which publishes one record per pod.
"""

from __future__ import annotations

import json
import os
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # TensorFlow imports Keras, whose backend must be chosen first (training.backend)
    import tensorflow as tf


@dataclass(frozen=True)
class ClusterRole:
    num_workers: int
    task_index: int

    @property
    def is_chief(self) -> bool:
        return self.task_index == 0


def tf_config_from_job(environ: MutableMapping[str, str] | None = None) -> str | None:
    """``TF_CONFIG`` for this pod of an Indexed Job, or None when not running in one."""
    env: MutableMapping[str, str] = environ if environ is not None else os.environ
    if "JOB_COMPLETION_INDEX" not in env or "SLIPWAY_WORKERS" not in env:
        return None
    try:
        index, workers = int(env["JOB_COMPLETION_INDEX"]), int(env["SLIPWAY_WORKERS"])
        job, service = env["SLIPWAY_JOB_NAME"], env["SLIPWAY_JOB_SERVICE"]
        port = int(env.get("SLIPWAY_WORKER_PORT", "2222"))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"incomplete Indexed Job environment for TF_CONFIG: {exc}") from None
    if not 0 <= index < workers:
        raise ValueError(f"JOB_COMPLETION_INDEX {index} is outside 0..{workers - 1}")
    hosts = [f"{job}-{i}.{service}:{port}" for i in range(workers)]
    return json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}})


def ensure_tf_config(environ: MutableMapping[str, str] | None = None) -> None:
    """Set ``TF_CONFIG`` from the Indexed Job environment unless it is given explicitly."""
    env: MutableMapping[str, str] = environ if environ is not None else os.environ
    if not env.get("TF_CONFIG"):
        derived = tf_config_from_job(env)
        if derived:
            env["TF_CONFIG"] = derived


def cluster_role(environ: dict[str, str] | None = None) -> ClusterRole:
    """Read ``TF_CONFIG``; absent means a single worker that is its own chief."""
    raw = (environ if environ is not None else os.environ).get("TF_CONFIG")
    if not raw:
        return ClusterRole(num_workers=1, task_index=0)
    try:
        tf_config = json.loads(raw)
        workers = tf_config.get("cluster", {}).get("worker", [])
        task = tf_config.get("task", {})
        index = int(task.get("index", 0)) if task.get("type", "worker") == "worker" else 0
    except (ValueError, AttributeError, TypeError) as exc:
        raise ValueError(f"TF_CONFIG is not valid JSON cluster spec: {exc}") from None
    return ClusterRole(num_workers=max(1, len(workers)), task_index=index)


def make_strategy(name: str, role: ClusterRole) -> tf.distribute.Strategy:
    import tensorflow as tf

    if name == "multi_worker" or (name == "auto" and role.num_workers > 1):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def patch_keras_multi_worker_logs() -> None:
    """Work around Keras 3.15 averaging each step's scalar logs with ``axis=0`` across workers.

    Its TF trainer reduces the per-replica logs with ``strategy.reduce("MEAN", v, axis=0)`` under
    ``MultiWorkerMirroredStrategy``, which fails on scalars (loss, accuracy). Averaging them with
    ``axis=None`` is what was meant (the metric variables are already aggregated). Applied only
    in a multi-worker process, once; single-worker training never touches Keras internals.
    """
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica
    if getattr(original, "slipway_patched", False):
        return

    def reduce_per_replica(values, strategy, reduction):  # type: ignore[no-untyped-def]
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    reduce_per_replica.slipway_patched = True  # type: ignore[attr-defined]
    tf_trainer.reduce_per_replica = reduce_per_replica
