"""Turn what a source delivered into the snapshot contract: float32 inputs, int64 class labels.

Why one place: every source (IDX, digits, npz, parquet) can hand over strings, object arrays,
fractional or one-hot labels; each must fail the same way, with a ``DataError`` that says where
the data came from and shows an offending value, before anything is written to the store.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from slipway.data.dataset import DataError

_NUMERIC = "biuf"


def _first_non_numeric(values: np.ndarray) -> tuple[int, object]:
    flat = values.reshape(-1)
    for i, value in enumerate(flat):
        try:
            float(value)
        except (TypeError, ValueError):
            return i, value.item() if isinstance(value, np.generic) else value
    return -1, None


def to_features(x: np.ndarray, scale: float, origin: str) -> np.ndarray:
    """``x`` as float32 divided by ``scale``; non-numeric values are a ``DataError``."""
    x = np.asarray(x)
    if x.ndim < 2:
        raise DataError(f"{origin}: inputs must have an example axis and features, got shape {x.shape}")
    if x.dtype.kind not in _NUMERIC:
        try:
            x = x.astype(np.float64)
        except (TypeError, ValueError):
            index, value = _first_non_numeric(x)
            row = index // max(1, int(np.prod(x.shape[1:])))
            raise DataError(
                f"{origin}: non-numeric values in the inputs (dtype {x.dtype}),"
                f" e.g. {value!r} in example {row}"
            ) from None
    out = x.astype(np.float32)
    if scale != 1:
        out /= np.float32(scale)
    return out


def to_labels(y: np.ndarray, origin: str) -> np.ndarray:
    """``y`` as int64 class indices; strings, fractions, NaN and one-hot labels are a ``DataError``."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{origin}: labels must be one class index per example (1-D), got shape {y.shape}")
    if y.dtype.kind in "biu":
        return y.astype(np.int64)
    if y.dtype.kind != "f":
        index, value = _first_non_numeric(y)
        if index >= 0:
            raise DataError(
                f"{origin}: non-numeric labels (dtype {y.dtype}), e.g. {value!r} in example {index};"
                " labels must be class indices 0..K-1"
            )
        y = y.astype(np.float64)
    bad = ~np.isfinite(y) | (y != np.round(y))
    if bad.any():
        index = int(np.argmax(bad))
        raise DataError(
            f"{origin}: labels must be whole class indices; {int(bad.sum())} are not, e.g. {y[index]!r}"
            f" in example {index}"
        )
    return y.astype(np.int64)


def conform_shape(x: np.ndarray, input_shape: Sequence[int]) -> np.ndarray:
    """Reshape flat or channel-less examples to ``input_shape`` when the sizes agree.

    A size mismatch is left alone on purpose: the validation step's schema expectation reports
    the wrong shape with the rest of the data's problems.
    """
    target = tuple(int(d) for d in input_shape)
    if x.shape[1:] == target or int(np.prod(x.shape[1:])) != int(np.prod(target)):
        return x
    return x.reshape((len(x), *target))
