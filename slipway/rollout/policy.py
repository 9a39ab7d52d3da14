"""The rollout policy as pure functions: what to do after one analysis of the canary.

A decision table (Flagger's, plus an explicit "inconclusive"):

=====================  ===========================  ======================================
canary                 analysis                     action
=====================  ===========================  ======================================
unavailable            (not analysed)               rollback "canary unavailable"
too few requests       inconclusive                 hold; past the deadline at one step:
                                                    rollback "insufficient traffic"
enough requests        a check failed               failures+1; at ``failure_limit``:
                                                    rollback, else hold
enough requests        every check passed           successes+1; at ``success_limit``:
                                                    advance (promote after the last step)
=====================  ===========================  ======================================

Low traffic never counts as a failed check: it says nothing about the canary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from slipway.config import RolloutConfig

Action = Literal["advance", "hold", "promote", "rollback"]


@dataclass(frozen=True)
class Judgement:
    """One check of one analysis: passed, failed, or ``None`` when the data cannot tell."""

    check: str
    passed: bool | None
    value: float | None
    threshold: float | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Progress:
    """Where a rollout stands: the step index, when it started, the counts the limits apply to."""

    step: int = 0
    step_started: float = 0.0
    successes: int = 0  # passing analyses in a row at this step
    failures: int = 0  # failed analyses in this rollout

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Progress:
        return cls(**raw)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    progress: Progress
    weight: int  # canary weight (percent) after the decision

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "reason": self.reason,
            "progress": self.progress.to_dict(),
            "weight": self.weight,
        }


def interval_s(policy: RolloutConfig, step: int) -> float:
    """The analysis interval of ``step`` (per-step when configured)."""
    return policy.step_intervals_s[step] if policy.step_intervals_s else policy.interval_s


def weight(policy: RolloutConfig, step: int) -> int:
    return policy.steps[step]


def decide(
    policy: RolloutConfig,
    progress: Progress,
    judgements: Sequence[Judgement],
    *,
    canary_requests: int,
    canary_available: bool,
    now: float,
) -> Decision:
    """The action after one analysis at ``progress.step`` (see the module's table)."""
    current = weight(policy, progress.step)
    if not canary_available:
        return Decision("rollback", "canary unavailable", progress, 0)
    if canary_requests < policy.min_requests:
        waited = now - progress.step_started
        if waited >= policy.insufficient_traffic_deadline_s:
            return Decision(
                "rollback",
                f"insufficient traffic: {canary_requests} canary requests in the last analysis"
                f" (needs {policy.min_requests}) after {waited:.1f} s at {current} %",
                progress,
                0,
            )
        return Decision(
            "hold",
            f"inconclusive: {canary_requests} canary requests (needs {policy.min_requests});"
            f" holding at {current} %",
            progress,
            current,
        )
    failed = [j for j in judgements if j.passed is False]
    if failed:
        failures = progress.failures + 1
        why = "; ".join(f"{j.check}: {j.detail}" for j in failed)
        after = replace(progress, failures=failures, successes=0)
        if failures >= policy.failure_limit:
            return Decision("rollback", f"failed checks ({failures}/{policy.failure_limit}): {why}", after, 0)
        return Decision(
            "hold", f"failed checks ({failures}/{policy.failure_limit}): {why}; holding", after, current
        )
    successes = progress.successes + 1
    if successes < policy.success_limit:
        return Decision(
            "hold",
            f"checks passed ({successes}/{policy.success_limit} at {current} %)",
            replace(progress, successes=successes),
            current,
        )
    if progress.step + 1 >= len(policy.steps):
        return Decision(
            "promote",
            f"every check passed at every step ({', '.join(str(s) for s in policy.steps)} %)",
            replace(progress, successes=successes),
            100,
        )
    nxt = progress.step + 1
    return Decision(
        "advance",
        f"checks passed at {current} %; advancing to {weight(policy, nxt)} %",
        Progress(step=nxt, step_started=now, successes=0, failures=progress.failures),
        weight(policy, nxt),
    )
