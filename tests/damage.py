"""Damage made in the tests from real data: bad partitions that keep global statistics normal.

Each function returns a new ``Split`` built from a clean one; nothing here is tuned to a check.
Kinds: spatial (shifts of several sizes, rotations, flips), domain swaps (part of a partition
replaced by scikit-learn's 8x8 digits upscaled to the image size, MNIST-like strokes, each
rescaled to the brightness of the image it replaces), and label corruption (a permutation of
the classes, systematic swaps of class pairs, a random fraction relabelled).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from slipway.data.dataset import Split


def shifted(split: Split, dy: int, dx: int) -> Split:
    """Content moved by (dy, dx) pixels, blank (0) where it came from."""
    x = np.zeros_like(split.x)
    h, w = split.x.shape[1:3]
    src = split.x[:, max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
    x[:, max(0, dy) : max(0, dy) + src.shape[1], max(0, dx) : max(0, dx) + src.shape[2]] = src
    return Split(x, split.y)


def rotated(split: Split, degrees: float) -> Split:
    if degrees % 90 == 0:
        return Split(np.ascontiguousarray(np.rot90(split.x, int(degrees // 90), axes=(1, 2))), split.y)
    x = ndimage.rotate(split.x, degrees, axes=(2, 1), reshape=False, order=1, mode="constant")
    return Split(np.clip(x, 0, 1).astype(np.float32), split.y)


def flipped(split: Split, axis: str) -> Split:
    ax = 2 if axis == "horizontal" else 1
    return Split(np.ascontiguousarray(np.flip(split.x, axis=ax)), split.y)


@functools.cache
def _digit_images(size: int) -> np.ndarray:
    """scikit-learn's 1,797 8x8 digits upscaled to ``size`` x ``size`` (a 2-pixel margin)."""
    from sklearn.datasets import load_digits

    digits = load_digits().images / 16.0
    inner = size - 4
    up = ndimage.zoom(digits, (1, inner / 8, inner / 8), order=1)
    out = np.zeros((len(digits), size, size), dtype=np.float32)
    out[:, 2 : 2 + inner, 2 : 2 + inner] = np.clip(up, 0, 1)
    return out


def domain_swapped(split: Split, fraction: float, seed: int = 0) -> Split:
    """``fraction`` of the rows replaced by upscaled handwritten digits, each rescaled to the
    mean intensity of the image it replaces (so per-image brightness stays alike); labels kept."""
    rng = np.random.default_rng(seed)
    x = split.x.copy()
    rows = rng.choice(len(x), round(fraction * len(x)), replace=False)
    digits = _digit_images(x.shape[1])
    picked = digits[rng.integers(0, len(digits), len(rows))]
    target = x[rows].reshape(len(rows), -1).mean(axis=1)
    current = picked.reshape(len(rows), -1).mean(axis=1)
    x[rows] = np.clip(picked * (target / np.maximum(current, 1e-6))[:, None, None], 0, 1)
    return Split(x, split.y)


def labels_permuted(split: Split, num_classes: int = 10, seed: int = 0) -> Split:
    """Every class renamed: y -> perm[y] with a permutation that moves every class."""
    rng = np.random.default_rng(seed)
    while True:
        perm = rng.permutation(num_classes)
        if (perm != np.arange(num_classes)).all():
            return Split(split.x, perm[split.y].astype(np.int64))


def labels_swapped(split: Split, pairs: list[tuple[int, int]]) -> Split:
    """Systematic swaps: the labels of each pair of classes exchanged."""
    y = split.y.copy()
    for a, b in pairs:
        y[split.y == a], y[split.y == b] = b, a
    return Split(split.x, y)


def labels_noisy(split: Split, fraction: float, num_classes: int = 10, seed: int = 0) -> Split:
    """``fraction`` of the rows given a different label, drawn uniformly."""
    rng = np.random.default_rng(seed)
    y = split.y.copy()
    rows = rng.choice(len(y), round(fraction * len(y)), replace=False)
    y[rows] = (y[rows] + rng.integers(1, num_classes, len(rows))) % num_classes
    return Split(split.x, y)
