"""McNemar's exact test and the paired bootstrap on known and degenerate inputs."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from slipway.evaluation.statistics import bootstrap_accuracy_difference, mcnemar_exact


def _pairs(cand_only: int, champ_only: int, both: int = 0, neither: int = 0) -> tuple[np.ndarray, np.ndarray]:
    cand = [True] * cand_only + [False] * champ_only + [True] * both + [False] * neither
    champ = [False] * cand_only + [True] * champ_only + [True] * both + [False] * neither
    return np.array(cand), np.array(champ)


@pytest.mark.parametrize(
    ("cand_only", "champ_only", "p_value"),
    [
        (1, 9, 22 / 1024),  # 2 * P(X <= 1), X ~ Bin(10, 1/2)
        (0, 5, 2 / 32),
        (5, 0, 2 / 32),
        (3, 3, 1.0),
        (0, 1, 1.0),
        (10, 30, 2 * sum(comb(40, i) for i in range(11)) / 2**40),  # 0.00222, by hand
    ],
)
def test_known_mcnemar_values(cand_only: int, champ_only: int, p_value: float) -> None:
    result = mcnemar_exact(*_pairs(cand_only, champ_only, both=50, neither=7))
    assert result.candidate_only == cand_only and result.champion_only == champ_only
    assert result.both_correct == 50 and result.both_wrong == 7
    assert result.p_value == pytest.approx(p_value, rel=1e-4)
    print(f"\nMcNemar {cand_only} vs {champ_only} discordant: p = {result.p_value:.6g}")


def test_identical_vectors_have_p_one_and_ci_at_zero() -> None:
    correct = np.random.default_rng(1).random(1000) < 0.9
    assert mcnemar_exact(correct, correct).p_value == 1.0
    ci = bootstrap_accuracy_difference(correct, correct, samples=500)
    assert ci.contains(0.0) and ci.low == ci.high == 0.0 and ci.estimate == 0.0


def test_bootstrap_is_seeded_and_centred() -> None:
    cand, champ = _pairs(60, 20, both=900, neither=20)
    a = bootstrap_accuracy_difference(cand, champ, samples=2000, seed=3)
    b = bootstrap_accuracy_difference(cand, champ, samples=2000, seed=3)
    assert a == b
    assert a.estimate == pytest.approx(0.04)
    assert a.low < 0.04 < a.high and a.low > 0  # a clear improvement excludes 0
    # normal approximation of the paired difference: sd = sqrt((b + c)/n - d^2) / sqrt(n)
    sd = np.sqrt((80 / 1000 - 0.04**2) / 1000)
    assert a.high - a.low == pytest.approx(2 * 1.96 * sd, rel=0.15)


def test_bootstrap_matches_index_resampling() -> None:
    """Drawing multinomial counts is the same bootstrap as resampling example indices."""
    cand, champ = _pairs(30, 18, both=140, neither=12)
    fast = bootstrap_accuracy_difference(cand, champ, samples=4000, seed=0)
    rng = np.random.default_rng(5)
    idx = rng.integers(0, len(cand), size=(4000, len(cand)))
    slow = cand[idx].mean(axis=1) - champ[idx].mean(axis=1)
    low, high = np.percentile(slow, [2.5, 97.5])
    assert fast.low == pytest.approx(low, abs=0.01) and fast.high == pytest.approx(high, abs=0.01)


def test_unpaired_vectors_are_rejected() -> None:
    with pytest.raises(ValueError, match="same test set"):
        mcnemar_exact(np.ones(3, bool), np.ones(4, bool))
