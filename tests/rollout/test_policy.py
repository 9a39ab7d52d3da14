"""The rollout policy as a decision table, and the judges on hand-made windows."""

from __future__ import annotations

import pytest

from slipway.config import RolloutConfig
from slipway.rollout import judges
from slipway.rollout.policy import Judgement, Progress, decide, interval_s
from slipway.rollout.window import VariantWindow, Window, quantile

POLICY = RolloutConfig(
    steps=[1, 10, 50, 100],
    interval_s=5,
    min_requests=10,
    insufficient_traffic_deadline_s=30,
    failure_limit=2,
    success_limit=1,
)
PASS = Judgement("error_rate", True, 0.0, 0.01, "ok")
FAIL = Judgement("error_rate", False, 0.3, 0.01, "30 %")
UNSURE = Judgement("latency_p99", None, None, 1.0, "no data")


@pytest.mark.parametrize(
    ("progress", "checks", "requests", "available", "now", "action", "step", "weight", "reason"),
    [
        # canary unavailable: rollback, whatever the checks say
        (Progress(0, 0, 0, 0), [PASS], 100, False, 1, "rollback", 0, 0, "canary unavailable"),
        # too few requests: hold, never a failure ...
        (Progress(0, 0, 0, 0), [FAIL], 9, True, 5, "hold", 0, 1, "inconclusive"),
        # ... until the deadline at one step
        (Progress(1, 100, 0, 0), [PASS], 3, True, 130, "rollback", 1, 0, "insufficient traffic"),
        (Progress(1, 100, 0, 0), [PASS], 3, True, 129, "hold", 1, 10, "inconclusive"),
        # a failed check: hold below the failure limit, rollback at it
        (Progress(0, 0, 0, 0), [PASS, FAIL], 50, True, 5, "hold", 0, 1, "failed checks (1/2)"),
        (Progress(2, 0, 0, 1), [FAIL], 50, True, 5, "rollback", 2, 0, "failed checks (2/2)"),
        # passing (an inconclusive judge does not block): advance; after the last step promote
        (Progress(0, 0, 0, 0), [PASS, UNSURE], 50, True, 5, "advance", 1, 10, "advancing to 10 %"),
        (Progress(3, 0, 0, 1), [PASS], 50, True, 5, "promote", 3, 100, "every check passed"),
    ],
)
def test_decision_table(
    progress: Progress,
    checks: list[Judgement],
    requests: int,
    available: bool,
    now: float,
    action: str,
    step: int,
    weight: int,
    reason: str,
) -> None:
    decision = decide(POLICY, progress, checks, canary_requests=requests, canary_available=available, now=now)
    assert decision.action == action
    assert decision.progress.step == step
    assert decision.weight == weight
    assert reason in decision.reason


def test_low_traffic_never_counts_as_failure() -> None:
    decision = decide(POLICY, Progress(), [FAIL], canary_requests=0, canary_available=True, now=1)
    assert decision.progress.failures == 0


def test_success_limit_needs_passes_in_a_row() -> None:
    policy = POLICY.model_copy(update={"success_limit": 2})
    first = decide(policy, Progress(), [PASS], canary_requests=20, canary_available=True, now=1)
    assert (first.action, first.progress.successes) == ("hold", 1)
    failed = decide(policy, first.progress, [FAIL], canary_requests=20, canary_available=True, now=2)
    assert failed.progress.successes == 0
    second = decide(policy, failed.progress, [PASS], canary_requests=20, canary_available=True, now=3)
    assert second.action == "hold"
    third = decide(policy, second.progress, [PASS], canary_requests=20, canary_available=True, now=4)
    assert (third.action, third.progress.step, third.progress.step_started) == ("advance", 1, 4)


def test_intervals_per_step_and_bad_configs() -> None:
    assert interval_s(POLICY, 2) == 5
    per_step = RolloutConfig(steps=[5, 100], step_intervals_s=[2, 9])
    assert [interval_s(per_step, i) for i in (0, 1)] == [2, 9]
    for bad in ({"steps": [50, 10]}, {"steps": [0, 10]}, {"steps": [10], "step_intervals_s": [1, 2]}):
        with pytest.raises(ValueError, match="steps"):
            RolloutConfig(**bad)
    with pytest.raises(ValueError, match="prometheus_url"):
        RolloutConfig(metrics_provider="prometheus")


def _variant(
    ok: int, errors: int = 0, classes: dict[str, float] | None = None, slow: int = 0
) -> VariantWindow:
    total = ok + errors
    buckets = {"0.01": total - slow, "0.1": total - slow, "2.5": total, "+Inf": total}
    return VariantWindow(
        requests={"200": ok, "500": errors} if errors else {"200": ok},
        latency_buckets=buckets,
        classes=classes or {str(i): 10.0 for i in range(10)},
    )


def test_error_judge_needs_significance_and_size() -> None:
    stable = _variant(1000, errors=2)
    assert judges.error_rate(POLICY, stable, _variant(10, errors=5)).passed is False
    assert judges.error_rate(POLICY, stable, _variant(20)).passed is True
    # one error in 12 is not significant against stable's 0.2 %: no verdict against the canary
    assert judges.error_rate(POLICY, stable, _variant(11, errors=1)).passed is True
    assert judges.error_rate(POLICY, stable, VariantWindow()).passed is None


def test_latency_judge() -> None:
    assert quantile(0.5, {"0.1": 50, "0.2": 100, "+Inf": 100}) == pytest.approx(0.1)
    assert quantile(0.99, {}) is None
    fast = _variant(1000)
    assert judges.latency(POLICY, fast, _variant(100)).passed is True
    slow = judges.latency(POLICY, fast, _variant(80, slow=20))
    assert slow.passed is False and "ceiling" in slow.detail
    tight = POLICY.model_copy(update={"max_latency_p99_s": 5.0, "latency_tolerance_s": 0.01})
    assert "stable" in judges.latency(tight, fast, _variant(80, slow=20)).detail


def test_prediction_judge_catches_skew_with_zero_errors() -> None:
    even = {str(i): 100.0 for i in range(10)}
    assert judges.jensen_shannon(even, even) == pytest.approx(0.0)
    assert judges.jensen_shannon({"0": 1.0}, {"1": 1.0}) == pytest.approx(1.0)
    stable = _variant(1000, classes=even)
    skewed = _variant(50, classes={"0": 300.0, "1": 300.0, "2": 300.0})
    checks = judges.judge(POLICY, Window(stable, skewed, 5.0))
    by_name = {j.check: j for j in checks}
    assert by_name["error_rate"].passed is True
    assert by_name["prediction_jsd"].passed is False
    near = _variant(50, classes={**even, "3": 120.0})
    assert judges.predictions(POLICY, stable, near).passed is True
    # at a 100 % step stable answers almost nothing: no comparison against 2 requests' noise
    tiny_stable = _variant(2, classes={"1": 32.0})
    assert judges.predictions(POLICY, tiny_stable, _variant(50, classes=even)).passed is None
    assert judges.latency(POLICY, tiny_stable, _variant(50)).passed is True
