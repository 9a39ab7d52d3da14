"""Distribution strategy from ``training.strategy`` and the ``TF_CONFIG`` a pod is given.

Multi-worker training runs one pod per worker (an Indexed Job); every worker computes, but only
the chief (worker 0) writes checkpoints and the model, so workers never race on the store.
"""

from __future__ import annotations

import json
import os
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
