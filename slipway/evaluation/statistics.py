"""Paired statistics on per-example correctness, so test-set noise cannot flip a gate decision.

Both models are scored on the same examples, so the comparison is paired: only the examples on
which they *disagree* carry information about which is better.

* McNemar's exact test: under "equally accurate", each discordant example is a fair coin flip
  between "only the candidate is right" and "only the champion is right", so the count is
  Binomial(discordant, 0.5); ``scipy.stats.binomtest`` gives the exact two-sided p-value.
* A paired bootstrap confidence interval of the accuracy difference, for the report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import binomtest


@dataclass(frozen=True)
class McNemarResult:
    """Discordant counts and the exact two-sided p-value of "both models are equally accurate"."""

    candidate_only: int  # examples the candidate gets right and the champion gets wrong
    champion_only: int  # examples the champion gets right and the candidate gets wrong
    both_correct: int
    both_wrong: int
    p_value: float

    @property
    def discordant(self) -> int:
        return self.candidate_only + self.champion_only

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "discordant": self.discordant}


@dataclass(frozen=True)
class BootstrapInterval:
    """Percentile interval of ``accuracy(candidate) - accuracy(champion)``."""

    estimate: float
    low: float
    high: float
    confidence: float
    samples: int
    seed: int

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mcnemar_exact(candidate_correct: np.ndarray, champion_correct: np.ndarray) -> McNemarResult:
    """McNemar's exact test on two paired boolean correctness vectors.

    No discordant pairs means no evidence of any difference: p = 1 (binomtest needs n >= 1).
    """
    cand, champ = _paired(candidate_correct, champion_correct)
    candidate_only = int(np.sum(cand & ~champ))
    champion_only = int(np.sum(~cand & champ))
    discordant = candidate_only + champion_only
    p_value = 1.0 if discordant == 0 else float(binomtest(candidate_only, discordant, 0.5).pvalue)
    return McNemarResult(
        candidate_only=candidate_only,
        champion_only=champion_only,
        both_correct=int(np.sum(cand & champ)),
        both_wrong=int(np.sum(~cand & ~champ)),
        p_value=min(1.0, p_value),
    )


def bootstrap_accuracy_difference(
    candidate_correct: np.ndarray,
    champion_correct: np.ndarray,
    *,
    samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapInterval:
    """Paired bootstrap percentile interval of the accuracy difference, seeded (reproducible).

    Resampling examples with replacement and averaging ``d_i = cand_i - champ_i`` only depends on
    how many resampled examples have d = +1, 0, -1, and those counts are exactly
    Multinomial(n, observed shares). Drawing the counts directly is the same bootstrap, in
    O(samples) instead of O(samples * n) memory and time (10,000 examples x 1,000 samples).
    """
    cand, champ = _paired(candidate_correct, champion_correct)
    n = len(cand)
    d = cand.astype(np.int8) - champ.astype(np.int8)
    shares = np.array([np.sum(d == 1), np.sum(d == 0), np.sum(d == -1)], dtype=np.float64) / n
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, shares, size=samples)
    diffs = (counts[:, 0] - counts[:, 2]) / n
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(diffs, [tail, 100.0 - tail])
    return BootstrapInterval(
        estimate=float(d.mean()),
        low=float(low),
        high=float(high),
        confidence=confidence,
        samples=samples,
        seed=seed,
    )


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=bool).reshape(-1)
    b = np.asarray(b, dtype=bool).reshape(-1)
    if len(a) != len(b):
        raise ValueError(f"paired vectors differ in length: {len(a)} vs {len(b)} (not the same test set?)")
    if len(a) == 0:
        raise ValueError("paired statistics need at least one example")
    return a, b
