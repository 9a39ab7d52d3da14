"""Keras backend choice: JAX-trained models export a SavedModel that TensorFlow serves identically,
and training on JAX checkpoints and resumes like on TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from slipway.config import ConfigError, TrainingConfig, parse_config
from slipway.training.backend import compilation_cache_folder, wanted_backend

REPO = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter: the backend is fixed when Keras is first imported.
_TRAIN_ON_JAX = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from slipway.config import parse_config
    from slipway.data.dataset import Snapshot, Split
    from slipway.store import open_store
    from slipway.training.backend import select_backend

    out, cache = sys.argv[1], sys.argv[2]
    cfg = parse_config({
        "name": "digits", "model_name": "digits", "store_url": "file://" + out + "/store",
        "data": {"source": {"kind": "digits"}, "input_shape": [8, 8], "num_classes": 10},
        "training": {"epochs": 4, "batch_size": 32, "backend": "jax", "steps_per_execution": 4,
                     "compilation_cache": cache},
    })
    assert select_backend(cfg.training) == "jax"
    import logging
    import jax
    jax.config.update("jax_log_compiles", True)
    compiled, cache_hits = [], []
    class _Compiles(logging.Handler):
        def emit(self, record):
            message = record.getMessage()
            if "Finished XLA compilation of jit(train_step)" in message:  # compiled or loaded
                compiled.append(message)
            if "Persistent compilation cache hit for 'jit_train_step'" in message:
                cache_hits.append(message)
    logging.getLogger("jax").addHandler(_Compiles())
    from sklearn.datasets import load_digits
    from slipway.training.trainer import export_model, train
    d = load_digits()
    x = (d.images / 16).astype("float32"); y = d.target.astype("int64")
    snap = Snapshot(train=Split(x[:1200], y[:1200]), validation=Split(x[1200:1400], y[1200:1400]),
                    test=Split(x[1400:], y[1400:]))
    outcome = train(cfg, snap, store=open_store(cfg.store_url), checkpoint_prefix="ckpt", fingerprint="f")
    np.save(out + "/x.npy", snap.test.x)
    np.save(out + "/p.npy", outcome.model.predict(snap.test.x, verbose=0))
    export_model(outcome.model, out + "/model", {})
    print(json.dumps({"backend": outcome.backend, "final": outcome.final, "train_step_compiles": len(compiled),
                      "train_step_cache_hits": len(cache_hits)}))
    """
)


def _fresh_interpreter(script: str, *args: str) -> dict:
    """Run ``script`` where Keras picks its own backend; its last stdout line is a JSON report."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _train_on_jax(out: Path, cache: str = "") -> dict:
    out.mkdir(parents=True, exist_ok=True)
    return _fresh_interpreter(_TRAIN_ON_JAX, str(out), cache)


def test_jax_trained_model_serves_the_same_predictions_from_tensorflow(tmp_path: Path) -> None:
    report = _train_on_jax(tmp_path)
    assert report["backend"] == "jax"
    assert report["final"]["val_accuracy"] > 0.8
    # 1,200 rows in batches of 32 leave a partial batch; dropping it keeps one compiled shape.
    assert report["train_step_compiles"] == 1

    import tensorflow as tf

    served = tf.saved_model.load(str(tmp_path / "model"))
    x = np.load(tmp_path / "x.npy")
    (tf_out,) = served.signatures["serving_default"](tf.constant(x)).values()
    np.testing.assert_allclose(tf_out.numpy(), np.load(tmp_path / "p.npy"), rtol=1e-4, atol=1e-5)
    assert (tmp_path / "model" / "model.keras").exists()


def test_a_second_run_reuses_the_compiled_train_step_and_trains_the_same_model(tmp_path: Path) -> None:
    cache = tmp_path / "xla-cache"
    first = _train_on_jax(tmp_path / "first", str(cache))
    assert first["train_step_cache_hits"] == 0 and any(cache.iterdir())
    second = _train_on_jax(tmp_path / "second", str(cache))
    assert second["train_step_cache_hits"] == 1  # loaded from the cache, not compiled again
    assert second["final"] == first["final"]
    np.testing.assert_array_equal(np.load(tmp_path / "first/p.npy"), np.load(tmp_path / "second/p.npy"))


def test_the_compilation_cache_folder_is_not_part_of_the_model_fingerprint() -> None:
    raw = {
        "name": "digits",
        "model_name": "digits",
        "store_url": "file:///tmp/unused",
        "data": {"source": {"kind": "digits"}, "input_shape": [8, 8], "num_classes": 10},
    }
    here = parse_config({**raw, "training": {"compilation_cache": "/cache/a"}})
    there = parse_config({**raw, "training": {"compilation_cache": ""}})
    assert here.fingerprint() == there.fingerprint()
    assert here.fingerprint() != parse_config({**raw, "training": {"epochs": 3}}).fingerprint()


def test_the_compilation_cache_is_resolved_where_training_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPWAY_COMPILATION_CACHE", "/tmp/xla-cache")
    assert compilation_cache_folder(None) == "/tmp/xla-cache"  # the pod's own scratch folder
    assert compilation_cache_folder("") == ""  # off
    assert compilation_cache_folder("/cache") == "/cache"
    monkeypatch.delenv("SLIPWAY_COMPILATION_CACHE")
    assert compilation_cache_folder(None) == ".slipway/xla-cache"


def test_auto_backend_decisions() -> None:
    auto = TrainingConfig()
    assert wanted_backend(auto, gpu=False) == "jax"
    assert wanted_backend(auto, gpu=True) == "tensorflow"  # the GPU image's CUDA build
    assert wanted_backend(auto, gpu=False, num_workers=2) == "tensorflow"  # tf.distribute
    assert wanted_backend(TrainingConfig(backend="tensorflow"), gpu=False) == "tensorflow"
    assert wanted_backend(TrainingConfig(strategy="mirrored"), gpu=False) == "tensorflow"


def test_jax_with_a_tf_distribute_strategy_is_refused_at_parse_time() -> None:
    raw = {
        "name": "p",
        "model_name": "m",
        "store_url": "file:///tmp/x",
        "data": {"source": {"kind": "digits"}, "input_shape": [8, 8], "num_classes": 10},
        "training": {"backend": "jax", "strategy": "multi_worker"},
    }
    with pytest.raises(ConfigError, match=r"tf\.distribute"):
        parse_config(raw)


_RESUME_ON_JAX = textwrap.dedent(
    """
    import json, sys
    from slipway.config import parse_config
    from slipway.store import open_store
    from slipway.training.backend import select_backend

    out = sys.argv[1]
    cfg = parse_config({
        "name": "digits", "model_name": "digits", "store_url": "file://" + out + "/store",
        "data": {"source": {"kind": "digits"}, "input_shape": [8, 8], "num_classes": 10},
        "training": {"epochs": 4, "batch_size": 32, "backend": "jax", "steps_per_execution": 8},
    })
    select_backend(cfg.training)
    import keras
    from sklearn.datasets import load_digits
    from slipway.data.dataset import Snapshot, Split
    from slipway.training.trainer import train
    d = load_digits()
    x = (d.images / 16).astype("float32"); y = d.target.astype("int64")
    snap = Snapshot(train=Split(x[:1200], y[:1200]), validation=Split(x[1200:1400], y[1200:1400]),
                    test=Split(x[1400:], y[1400:]))

    class Preempted(Exception):
        pass

    class PreemptAfter(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == 2:
                raise Preempted

    store = open_store(cfg.store_url)
    try:
        train(cfg, snap, store=store, checkpoint_prefix="ckpt", fingerprint="f",
              extra_callbacks=[PreemptAfter()])
    except Preempted:
        pass
    resumed = train(cfg, snap, store=store, checkpoint_prefix="ckpt", fingerprint="f")
    print(json.dumps({"resumed_from": resumed.resumed_from_epoch, "history": resumed.history}))
    """
)


def test_jax_training_checkpoints_and_resumes_with_continuous_curves(tmp_path: Path) -> None:
    report = _fresh_interpreter(_RESUME_ON_JAX, str(tmp_path))
    assert report["resumed_from"] == 2
    history = report["history"]
    assert len(history["loss"]) == 4 and len(history["val_accuracy"]) == 4
    assert history["loss"][-1] < history["loss"][0]  # one model trained across the preemption
    assert history["val_accuracy"][-1] > 0.8
