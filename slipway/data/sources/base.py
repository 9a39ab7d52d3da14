"""What every source reader returns: the examples as delivered, before splitting.

A reader is ``read(uri, store_factory) -> RawData``. It only locates and decodes; checks that
apply to every source (numeric values, labels, lengths, ``max_examples``, scaling) happen once in
``slipway.data.sources.read_source``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from slipway.data.dataset import DataError
from slipway.store.base import ArtifactStore

# store URL (``s3://bucket``) -> store; ``slipway.store.open_store`` unless a test injects one.
StoreFactory = Callable[[str], ArtifactStore]


@dataclass(frozen=True)
class RawData:
    """Examples of one partition; ``test_x``/``test_y`` when the source ships its own test split."""

    x: np.ndarray
    y: np.ndarray
    origin: str
    test_x: np.ndarray | None = None
    test_y: np.ndarray | None = None

    def __post_init__(self) -> None:
        _check_lengths(self.x, self.y, self.origin)
        if (self.test_x is None) != (self.test_y is None):
            raise DataError(f"{self.origin}: a test split needs both inputs and labels")
        if self.test_x is not None:
            _check_lengths(self.test_x, self.test_y, f"{self.origin} (test split)")

    @property
    def has_test(self) -> bool:
        return self.test_x is not None

    def own_test(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The source's own test split ``(x, y)``, or None when it ships none."""
        if self.test_x is None or self.test_y is None:
            return None
        return self.test_x, self.test_y


def _check_lengths(x: np.ndarray, y: np.ndarray | None, origin: str) -> None:
    nx, ny = len(x), len(y) if y is not None else 0
    if nx != ny:
        raise DataError(f"{origin}: images and labels differ in length: {nx} inputs vs {ny} labels")
