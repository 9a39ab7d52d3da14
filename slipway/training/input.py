"""tf.data input pipelines: shuffle with a fixed seed, batch, prefetch.

Kept apart from the trainer so the input side can change (sharding for multi-worker, files
instead of arrays) without touching the training loop.
"""

from __future__ import annotations

import tensorflow as tf

from slipway.data.dataset import Split


def make_dataset(split: Split, batch_size: int, *, shuffle: bool, seed: int) -> tf.data.Dataset:
    dataset = tf.data.Dataset.from_tensor_slices((split.x, split.y))
    if shuffle:
        dataset = dataset.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    options = tf.data.Options()
    # Multi-worker: shard by data, not by file (the snapshot is one in-memory array).
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    # Training drops the partial last batch (one input shape for XLA; see training/batches.py).
    drop_remainder = shuffle and len(split) >= batch_size
    return (
        dataset.batch(batch_size, drop_remainder=drop_remainder)
        .prefetch(tf.data.AUTOTUNE)
        .with_options(options)
    )
