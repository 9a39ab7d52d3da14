"""ShuffledBatches: full batches of a seeded per-epoch shuffle, the same after a resume."""

from __future__ import annotations

import numpy as np
import pytest

from slipway.data.dataset import Split
from slipway.training.batches import ShuffledBatches, validation_batch_size


def _split(rows: int) -> Split:
    return Split(np.arange(rows, dtype="float32").reshape(rows, 1), np.arange(rows) % 10)


def _epoch(batches: ShuffledBatches) -> list[np.ndarray]:
    return [batches[i][0][:, 0].astype(int) for i in range(len(batches))]


def test_full_batches_only_and_no_example_twice_in_an_epoch() -> None:
    batches = ShuffledBatches(_split(1000), 128, seed=7)
    epoch = _epoch(batches)
    assert len(epoch) == 7 and all(len(b) == 128 for b in epoch)
    seen = np.concatenate(epoch)
    assert len(np.unique(seen)) == len(seen) == 896
    with pytest.raises(IndexError):
        batches[7]


def test_labels_stay_with_their_images() -> None:
    batches = ShuffledBatches(_split(300), 64, seed=1)
    x, y = batches[2]
    np.testing.assert_array_equal(y, x[:, 0].astype(int) % 10)


def test_each_epoch_reshuffles_and_over_epochs_every_example_is_seen() -> None:
    batches = ShuffledBatches(_split(1000), 128, seed=7)
    first = _epoch(batches)
    seen = set(np.concatenate(first))
    for _ in range(9):
        batches.on_epoch_end()
        seen |= set(np.concatenate(_epoch(batches)))
    assert not np.array_equal(np.concatenate(first), np.concatenate(_epoch(batches)))
    assert seen == set(range(1000))


def test_a_resumed_run_draws_the_same_batches_as_an_uninterrupted_one() -> None:
    uninterrupted = ShuffledBatches(_split(1000), 128, seed=3)
    for _ in range(4):
        uninterrupted.on_epoch_end()
    resumed = ShuffledBatches(_split(1000), 128, seed=3, initial_epoch=4)
    for a, b in zip(_epoch(uninterrupted), _epoch(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    other_seed = ShuffledBatches(_split(1000), 128, seed=4, initial_epoch=4)
    assert not np.array_equal(_epoch(resumed)[0], _epoch(other_seed)[0])


def test_a_split_smaller_than_a_batch_is_one_partial_batch() -> None:
    batches = ShuffledBatches(_split(50), 128, seed=0)
    assert len(batches) == 1 and len(batches[0][0]) == 50


def test_bad_batch_size_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        ShuffledBatches(_split(10), 0, seed=0)


def test_validation_is_one_batch_up_to_the_cap() -> None:
    assert validation_batch_size(6000) == 6000
    assert validation_batch_size(50_000) == 8192
    assert validation_batch_size(0) == 1
