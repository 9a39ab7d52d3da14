"""Judges: pure functions comparing the canary with stable over the same window.

* error rate: a one-sided Fisher exact test of the two proportions of 5xx answers (exact, so it
  stays honest at the small counts of a 1 % step) *and* a threshold on the increase: a
  significant but negligible increase passes, a large but insignificant one (two requests) holds;
* latency: the canary's p99 (from histogram buckets) against an absolute ceiling, and against
  stable's p99 times a ratio when the gap also exceeds a tolerance (buckets are coarse);
* predictions: the Jensen-Shannon divergence (base 2, 0..1) between the canary's and stable's
  predicted-class distributions: a model that answers 200 OK and predicts the wrong things fails.

A comparison with stable needs stable to have answered ``min_requests`` in the window too (at a
100 % step it answers almost nothing): otherwise the relative checks say "inconclusive" (``None``)
rather than compare against noise; the absolute ones (error increase over zero, p99 ceiling) stay.
"""

from __future__ import annotations

import numpy as np

from slipway.config import RolloutConfig
from slipway.rollout.policy import Judgement
from slipway.rollout.window import VariantWindow, Window, quantile


def error_rate(policy: RolloutConfig, stable: VariantWindow, canary: VariantWindow) -> Judgement:
    from scipy.stats import fisher_exact

    c_err, c_all = canary.errors, canary.total
    s_err, s_all = stable.errors, stable.total
    if c_all <= 0:
        return Judgement("error_rate", None, None, policy.max_error_rate_increase, "no canary requests")
    c_rate = c_err / c_all
    s_rate = s_err / s_all if s_all > 0 else 0.0
    table = [[round(c_err), round(c_all - c_err)], [round(s_err), round(max(s_all - s_err, 0))]]
    p_value = (
        float(fisher_exact(table, alternative="greater").pvalue) if s_all > 0 else (0.0 if c_err else 1.0)
    )
    increase = c_rate - s_rate
    failed = increase > policy.max_error_rate_increase and p_value < policy.error_alpha
    detail = (
        f"canary {c_err:.0f}/{c_all:.0f} = {c_rate:.2%} vs stable {s_err:.0f}/{s_all:.0f} = {s_rate:.2%}"
        f" (increase {increase:+.2%}, limit {policy.max_error_rate_increase:.2%}; Fisher p={p_value:.3g},"
        f" alpha {policy.error_alpha})"
    )
    return Judgement("error_rate", not failed, increase, policy.max_error_rate_increase, detail)


def _stable_too_small(policy: RolloutConfig, stable: VariantWindow) -> bool:
    return stable.total < policy.min_requests


def latency(policy: RolloutConfig, stable: VariantWindow, canary: VariantWindow) -> Judgement:
    c_p99 = quantile(0.99, canary.latency_buckets)
    s_p99 = None if _stable_too_small(policy, stable) else quantile(0.99, stable.latency_buckets)
    if c_p99 is None:
        return Judgement(
            "latency_p99", None, None, policy.max_latency_p99_s, "no canary latency observations"
        )
    if c_p99 > policy.max_latency_p99_s:
        return Judgement(
            "latency_p99",
            False,
            c_p99,
            policy.max_latency_p99_s,
            f"canary p99 {c_p99 * 1000:.1f} ms above the ceiling {policy.max_latency_p99_s * 1000:.0f} ms",
        )
    if s_p99 is not None and s_p99 > 0:
        limit = s_p99 * policy.max_latency_p99_ratio
        if c_p99 > limit and c_p99 - s_p99 > policy.latency_tolerance_s:
            return Judgement(
                "latency_p99",
                False,
                c_p99,
                limit,
                f"canary p99 {c_p99 * 1000:.1f} ms > {policy.max_latency_p99_ratio}x stable's"
                f" {s_p99 * 1000:.1f} ms",
            )
    stable_text = f"{s_p99 * 1000:.1f} ms" if s_p99 is not None else "n/a"
    return Judgement(
        "latency_p99",
        True,
        c_p99,
        policy.max_latency_p99_s,
        f"canary p99 {c_p99 * 1000:.1f} ms, stable {stable_text}",
    )


def jensen_shannon(p: dict[str, float], q: dict[str, float]) -> float | None:
    """JS divergence (base 2) of two count distributions over the union of their classes."""
    from scipy.spatial.distance import jensenshannon

    keys = sorted(set(p) | set(q), key=lambda k: (len(k), k))
    a = np.array([max(p.get(k, 0.0), 0.0) for k in keys])
    b = np.array([max(q.get(k, 0.0), 0.0) for k in keys])
    if a.sum() <= 0 or b.sum() <= 0:
        return None
    return float(jensenshannon(a, b, base=2) ** 2)


def predictions(policy: RolloutConfig, stable: VariantWindow, canary: VariantWindow) -> Judgement:
    if _stable_too_small(policy, stable):
        return Judgement(
            "prediction_jsd",
            None,
            None,
            policy.max_prediction_jsd,
            f"stable answered {stable.total:.0f} requests (needs {policy.min_requests}): nothing to compare with",
        )
    divergence = jensen_shannon(canary.classes, stable.classes)
    if divergence is None:
        return Judgement("prediction_jsd", None, None, policy.max_prediction_jsd, "no predictions to compare")
    passed = divergence <= policy.max_prediction_jsd
    return Judgement(
        "prediction_jsd",
        passed,
        divergence,
        policy.max_prediction_jsd,
        f"Jensen-Shannon divergence of predicted classes {divergence:.4f}"
        f" ({'<=' if passed else '>'} {policy.max_prediction_jsd})",
    )


def judge(policy: RolloutConfig, window: Window) -> list[Judgement]:
    """Every judge over one window."""
    return [
        error_rate(policy, window.stable, window.canary),
        latency(policy, window.stable, window.canary),
        predictions(policy, window.stable, window.canary),
    ]
