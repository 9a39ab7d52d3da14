"""Structure summaries and structural drift on small synthetic images (fast, no real data)."""

from __future__ import annotations

import numpy as np

from slipway.config import ValidationConfig
from slipway.data.structure import image_grid, structure_moments, structure_profile
from slipway.validation.pictures import structure_picture
from slipway.validation.structure import compare_structure

CFG = ValidationConfig()


def blobs(n: int, seed: int, dx: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n 12x12 images: a noisy bar whose column depends on the class (3 classes), moved by dx."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.random((n, 12, 12)).astype(np.float32) * 0.2
    for c in range(3):
        x[y == c, 2:10, 2 + 3 * c + dx : 4 + 3 * c + dx] += 0.7
    return np.clip(x, 0, 1), y.astype(np.int64)


def test_moments_agree_with_the_profile_and_skip_non_finite_rows() -> None:
    x, y = blobs(600, 0)
    profile, moments = structure_profile(x, y), structure_moments(x, y)
    assert profile["grid"] == [12, 12] and image_grid((12, 12, 1)) == (12, 12) and image_grid((144,)) is None
    for key in ("mean_map", "std_map"):
        np.testing.assert_allclose(profile["all"][key], moments["all"][key], atol=1e-5)
        np.testing.assert_allclose(profile["classes"]["2"][key], moments["classes"]["2"][key], atol=1e-5)
    broken = x.copy()
    broken[:50, 0, 0] = np.nan
    assert structure_moments(broken, y)["all"]["count"] == 550
    sample = structure_moments(x, y, np.ones(600, bool), np.arange(0, 600, 2))
    assert sample["all"]["count"] == 300


def test_same_distribution_passes_a_shift_fails_and_the_floor_follows_the_size() -> None:
    reference = structure_profile(*blobs(20_000, 1))
    clean = {s.name: s for s in compare_structure(structure_moments(*blobs(2000, 2)), reference, CFG)}
    assert len(clean) == 8 and all(s.passed for s in clean.values()), [
        s for s in clean.values() if not s.passed
    ]
    moved = {s.name: s for s in compare_structure(structure_moments(*blobs(2000, 3, dx=1)), reference, CFG)}
    assert not moved["structure_column_profile"].passed and not moved["class_pixel_mean_map"].passed
    assert moved["structure_row_profile"].passed  # a horizontal move leaves the row profile alone
    assert moved["class_pixel_mean_map"].label in {"0", "1", "2"}
    small = {s.name: s for s in compare_structure(structure_moments(*blobs(100, 4)), reference, CFG)}
    assert small["structure_pixel_mean_map"].noise_floor > 3 * clean["structure_pixel_mean_map"].noise_floor


def test_a_failed_structural_check_gets_a_picture() -> None:
    reference = structure_profile(*blobs(5000, 1))
    moments = structure_moments(*blobs(1000, 3, dx=2))
    stats = {s.name: s for s in compare_structure(moments, reference, CFG)}
    for name in ("structure_pixel_mean_map", "class_column_profile"):
        picture = structure_picture(stats[name], moments, reference)
        assert picture is not None and picture.startswith("<img") and "base64," in picture
