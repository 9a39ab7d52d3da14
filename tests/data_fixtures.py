"""Shared helpers for the data and validation tests: real Fashion-MNIST (loaded once per
session), a digits pipeline config on a throwaway ``file://`` store, and a local store.

Import the fixtures into a test module (``from tests.data_fixtures import fashion``).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from slipway.config import PipelineConfig, parse_config
from slipway.data.dataset import Split
from slipway.data.sources.idx import read as read_idx_folder
from slipway.store import ArtifactStore, open_store

FASHION_DIR = Path(os.environ.get("SLIPWAY_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))


@functools.cache
def load_fashion() -> tuple[Split, Split]:
    """(train, test) of Fashion-MNIST as float32 in [0, 1] and int64 labels; read once."""
    raw = read_idx_folder(str(FASHION_DIR), open_store)
    train = Split((raw.x / np.float32(255)).astype(np.float32), raw.y.astype(np.int64))
    test = Split((raw.test_x / np.float32(255)).astype(np.float32), raw.test_y.astype(np.int64))
    return train, test


@pytest.fixture(scope="session")
def fashion() -> tuple[Split, Split]:
    if not FASHION_DIR.is_dir():
        pytest.skip(f"Fashion-MNIST not found in {FASHION_DIR}")
    return load_fashion()


def pipeline_config(store_dir: Path, **sections: Any) -> PipelineConfig:
    """A digits pipeline (scale 16, 8x8, 10 classes) on ``file://<store_dir>``; sections override."""
    raw: dict[str, Any] = {
        "name": "digits",
        "model_name": "digits",
        "store_url": store_dir.as_uri(),
        "data": {
            "source": {"kind": "digits", "scale": 16},
            "input_shape": [8, 8],
            "num_classes": 10,
        },
        "metrics": {"textfile_dir": str(store_dir / "metrics")},
    }
    for name, value in sections.items():
        if isinstance(value, dict) and isinstance(raw.get(name), dict):
            raw[name] = {**raw[name], **value}
        else:
            raw[name] = value
    return parse_config(raw)


@pytest.fixture
def local_store(tmp_path: Path) -> ArtifactStore:
    return open_store((tmp_path / "store").as_uri())


FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def fashion_config(**validation: Any) -> PipelineConfig:
    """The Fashion-MNIST pipeline's data contract (28x28, 10 named classes), default thresholds."""
    return parse_config(
        {
            "name": "fashion_mnist",
            "model_name": "fashion-mnist",
            "store_url": "file:///tmp/unused",
            "data": {
                "source": {"kind": "idx", "uri": str(FASHION_DIR), "scale": 255},
                "input_shape": [28, 28],
                "num_classes": 10,
                "class_names": FASHION_CLASSES,
            },
            "validation": validation,
        }
    )


@pytest.fixture(scope="session")
def fashion_reference(fashion: tuple[Split, Split]) -> dict[str, Any]:
    """A reference document built from the Fashion-MNIST training set (what a champion saw)."""
    from slipway.data.profile import profile_split

    return {
        "snapshot_key": "datasets/fashion_mnist/train",
        "split": "train",
        "profile": profile_split(fashion[0]),
    }


@functools.cache
def _fashion_all() -> Split:
    train, test = load_fashion()
    return Split(np.concatenate([train.x, test.x]), np.concatenate([train.y, test.y]))


def clean_partition(fashion: tuple[Split, Split], seed: int, rows: int = 5000) -> Split:
    """``rows`` random examples of Fashion-MNIST (train and test together); ``fashion`` is the
    session fixture, passed so that tests skip cleanly where the data is missing."""
    everything = _fashion_all()
    idx = np.random.default_rng(seed).choice(len(everything), rows, replace=False)
    return Split(everything.x[idx], everything.y[idx])
