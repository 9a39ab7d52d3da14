"""In-memory dataset types shared by ingest, validation, training and evaluation.

A ``Split`` is a pair of arrays: ``x`` float32 of shape ``(n, *input_shape)`` and ``y`` int64 of
shape ``(n,)``. A ``Snapshot`` is the three splits of one ingested partition, addressed by the
SHA-256 of its content so that the same data always gets the same key (reruns reuse it).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np

from slipway.errors import BadInputError


class DataError(BadInputError, ValueError):
    """Input data is unreadable or malformed; the message says which file and what is wrong.

    A ``BadInputError``: no retry can fix bad data, so a step fails at once with exit code 65.
    """


@dataclass(frozen=True)
class Split:
    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise DataError(
                f"images and labels differ in length: {len(self.x)} inputs vs {len(self.y)} labels"
            )

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Snapshot:
    train: Split
    validation: Split
    test: Split

    @functools.cached_property
    def content_hash(self) -> str:
        """SHA-256 over shapes, dtypes and bytes of all six arrays: the snapshot's identity.

        Cached: the arrays of a snapshot are not modified once it exists.
        """
        digest = hashlib.sha256()
        for name in ("train", "validation", "test"):
            split: Split = getattr(self, name)
            for arr in (split.x, split.y):
                arr = np.ascontiguousarray(arr)
                digest.update(f"{name}:{arr.dtype.str}:{arr.shape};".encode())
                digest.update(arr.data)
        return digest.hexdigest()

    def all(self) -> Split:
        """Every example of the snapshot (train + validation + test), e.g. for validation."""
        return Split(
            np.concatenate([self.train.x, self.validation.x, self.test.x]),
            np.concatenate([self.train.y, self.validation.y, self.test.y]),
        )
