"""Compact features: exact duplicate groups, row statistics, odd inputs coerced not crashed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slipway.data.dataset import Split
from slipway.data.rowstats import row_stats
from slipway.validation.duplicates import duplicate_count, row_groups
from slipway.validation.features import compute_features
from tests.data_fixtures import pipeline_config

DATA = pipeline_config(Path("/tmp/unused")).data  # digits: 8x8, 10 classes


def test_duplicate_groups_are_exact() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((1000, 33), dtype=np.float32)
    x[500:600] = x[:100]
    x[700] = x[0]
    near = x[1].copy()
    near[5] = np.nextafter(near[5], np.float32(2))  # one ulp away: a different row
    x[701] = near
    groups = row_groups(x)
    assert duplicate_count(groups) == 101
    assert groups[0] == groups[500] == groups[700] and groups[1] == groups[501] != groups[701]


def test_duplicate_groups_of_odd_widths_and_dtypes() -> None:
    rows = np.array([[1, 2, 3], [4, 5, 6], [1, 2, 3]], dtype=np.uint8)
    assert duplicate_count(row_groups(rows)) == 1
    assert duplicate_count(row_groups(np.zeros((0, 3)))) == 0


def test_row_stats_match_numpy_with_and_without_nan() -> None:
    rng = np.random.default_rng(1)
    x = rng.random((50, 8, 8), dtype=np.float32)
    stats = row_stats(x)
    flat = x.reshape(50, -1).astype(np.float64)
    np.testing.assert_allclose(stats.mean, flat.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(stats.std, flat.std(axis=1), rtol=1e-4)
    np.testing.assert_array_equal(stats.max, flat.max(axis=1))
    x[3, 0, 0] = np.nan
    x[4, 0, 0] = np.inf
    stats = row_stats(x)
    assert stats.nan_count.tolist()[:5] == [0, 0, 0, 1, 0]
    assert np.isfinite(stats.mean[3]) and stats.max[4] == np.inf and np.isfinite(stats.mean[4])


def test_features_frames() -> None:
    rng = np.random.default_rng(2)
    x = rng.random((300, 8, 8), dtype=np.float32)
    y = np.arange(300) % 10
    y[0] = 3
    features = compute_features(Split(x, y.astype(np.int64)), DATA)
    assert list(features.rows.columns) == [
        "label",
        "value_min",
        "value_max",
        "value_mean",
        "value_std",
        "nan_count",
        "row_group",
    ]
    assert len(features.rows) == 300 and len(features.dataset) == 1
    row = features.dataset.iloc[0].to_dict()
    assert row["feature_count"] == 64 and row["example_shape"] == "8x8" and row["x_dtype"] == "float32"
    assert row["min_class_share"] == 29 / 300 and row["max_class_share"] == 31 / 300
    assert features.facts["min_class_name"] == "0" and features.facts["max_class_name"] == "3"


def test_unusable_labels_become_out_of_set() -> None:
    x = np.zeros((4, 8, 8), dtype=np.float32)
    features = compute_features(Split(x, np.array(["1", "cat", "2.5", "3"], dtype=object)), DATA)
    assert features.rows["label"].tolist() == [1, -1, -1, 3]
    assert features.facts["labels_outside"] == [-1]


def test_one_hot_labels_are_not_class_indices() -> None:
    x = np.zeros((3, 8, 8), dtype=np.float32)
    features = compute_features(Split(x, np.eye(3)), DATA)
    assert features.rows["label"].tolist() == [-1, -1, -1]
    column = compute_features(Split(x, np.array([[1], [2], [3]])), DATA)
    assert column.rows["label"].tolist() == [1, 2, 3]
