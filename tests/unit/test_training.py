"""Trainer: builds the configured model, learns, exports a servable model, resumes after preemption."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from slipway.config import parse_config
from slipway.data.dataset import Snapshot, Split
from slipway.store import open_store
from slipway.training.distributed import cluster_role
from slipway.training.models import build_model
from slipway.training.trainer import export_model, train


def digits_snapshot() -> Snapshot:
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")
    y = digits.target.astype("int64")
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    return Snapshot(Split(x[:1200], y[:1200]), Split(x[1200:1450], y[1200:1450]), Split(x[1450:], y[1450:]))


def config(tmp_path: Path, **training):
    return parse_config(
        {
            "name": "digits",
            "model_name": "digits",
            "store_url": f"file://{tmp_path / 'store'}",
            "data": {"source": {"kind": "digits"}, "input_shape": [8, 8], "num_classes": 10},
            "training": {
                "epochs": 6,
                "batch_size": 64,
                "optimizer": {"learning_rate": 0.01},
                "layers": [{"type": "flatten"}, {"type": "dense", "units": 32, "activation": "relu"}],
                **training,
            },
        }
    )


def test_reference_architecture() -> None:
    cfg = parse_config(
        {
            "name": "f",
            "model_name": "f",
            "store_url": "file:///tmp/x",
            "data": {"source": {"kind": "digits"}, "input_shape": [28, 28], "num_classes": 10},
        }
    )
    model = build_model(cfg.training, (28, 28), 10)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["InputLayer", "Flatten", "Dense", "Dropout", "Dense"]
    assert model.layers[2].units == 512 and model.layers[3].rate == pytest.approx(0.2)
    assert model.layers[-1].units == 10
    assert model.count_params() == 784 * 512 + 512 + 512 * 10 + 10
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)


def test_cnn_layers_build() -> None:
    cfg = parse_config(
        {
            "name": "c",
            "model_name": "c",
            "store_url": "file:///tmp/x",
            "data": {"source": {"kind": "digits"}, "input_shape": [8, 8], "num_classes": 10},
            "training": {
                "layers": [
                    {"type": "conv2d", "filters": 4, "kernel_size": 3, "activation": "relu"},
                    {"type": "maxpool2d"},
                ]
            },
        }
    )
    model = build_model(cfg.training, (8, 8), 10)
    assert model.output_shape == (None, 10)


def test_train_learns_and_exports(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    store = open_store(cfg.store_url)
    snapshot = digits_snapshot()
    outcome = train(cfg, snapshot, store=store, checkpoint_prefix="ckpt", fingerprint="f1")
    assert outcome.epochs_completed == 6 and outcome.resumed_from_epoch == 0
    assert len(outcome.history["loss"]) == 6
    assert outcome.history["loss"][-1] < outcome.history["loss"][0]
    assert outcome.final["val_accuracy"] > 0.85

    out = export_model(outcome.model, tmp_path / "model", {"note": "test"})
    assert (out / "saved_model.pb").exists() and (out / "variables").is_dir()
    assert json.loads((out / "metadata.json").read_text()) == {"note": "test"}
    reloaded = keras.saving.load_model(out / "model.keras")
    np.testing.assert_allclose(
        reloaded.predict(snapshot.test.x[:5], verbose=0),
        outcome.model.predict(snapshot.test.x[:5], verbose=0),
        rtol=1e-5,
    )

    import tensorflow as tf

    served = tf.saved_model.load(str(out))
    probabilities = served.signatures["serving_default"](tf.constant(snapshot.test.x[:3]))
    (output,) = probabilities.values()
    assert output.shape == (3, 10)


class _Preempted(Exception):
    pass


class _PreemptAfter(keras.callbacks.Callback):
    """Simulates a node preemption: the process dies after ``epochs`` epochs were checkpointed."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if epoch + 1 == self.epochs:
            raise _Preempted


def test_resumes_from_checkpoint_after_preemption(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    store = open_store(cfg.store_url)
    snapshot = digits_snapshot()
    with pytest.raises(_Preempted):
        train(
            cfg,
            snapshot,
            store=store,
            checkpoint_prefix="ckpt",
            fingerprint="f1",
            extra_callbacks=[_PreemptAfter(3)],
        )
    state = store.get_json("ckpt/state.json")
    assert state["epoch"] == 3 and len(state["history"]["loss"]) == 3

    resumed = train(cfg, snapshot, store=store, checkpoint_prefix="ckpt", fingerprint="f1")
    assert resumed.resumed_from_epoch == 3
    assert len(resumed.history["loss"]) == 6  # curves continue across the preemption
    assert resumed.final["val_accuracy"] > 0.85
    assert sorted(k for k in store.list("ckpt") if k.endswith(".keras")) == ["ckpt/epoch-0006.keras"]


def test_checkpoint_of_other_settings_is_ignored(tmp_path: Path) -> None:
    cfg = config(tmp_path, epochs=2)
    store = open_store(cfg.store_url)
    snapshot = digits_snapshot()
    train(cfg, snapshot, store=store, checkpoint_prefix="ckpt", fingerprint="old")
    fresh = train(cfg, snapshot, store=store, checkpoint_prefix="ckpt", fingerprint="new")
    assert fresh.resumed_from_epoch == 0


def test_cluster_role_from_tf_config() -> None:
    assert cluster_role({}).is_chief
    spec = {"cluster": {"worker": ["w0:2222", "w1:2222"]}, "task": {"type": "worker", "index": 1}}
    role = cluster_role({"TF_CONFIG": json.dumps(spec)})
    assert (role.num_workers, role.task_index, role.is_chief) == (2, 1, False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        cluster_role({"TF_CONFIG": "{not json"})


class _UploadFails:
    """A store whose checkpoint uploads fail after the first (e.g. S3 credentials expiring)."""

    def __init__(self, store) -> None:
        self._store, self.uploads = store, 0

    def upload_file(self, local, key):
        self.uploads += 1
        if self.uploads > 1:
            raise OSError(f"upload of {key} refused")
        return self._store.upload_file(local, key)

    def __getattr__(self, name):
        return getattr(self._store, name)


def test_a_checkpoint_that_cannot_be_stored_fails_training(tmp_path: Path) -> None:
    """Uploads run in the background, but their failure surfaces on the training thread."""
    cfg = config(tmp_path, epochs=4)
    store = _UploadFails(open_store(cfg.store_url))
    with pytest.raises(OSError, match=r"upload of ckpt/epoch-0002\.keras refused"):
        train(cfg, digits_snapshot(), store=store, checkpoint_prefix="ckpt", fingerprint="f")
    assert store.get_json("ckpt/state.json")["epoch"] == 1  # the last checkpoint that was stored
