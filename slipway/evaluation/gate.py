"""The evaluation gate: a pure decision from the gate policy and the evaluate step's result.

Pure on purpose: it runs in the Airflow worker on the small ``evaluate/result.json`` (no
TensorFlow, no store access), is trivially testable as a decision table, and its output - the
``Blessing`` - records every check with the observed value, the threshold and the verdict, so a
person can see why a version was or was not deployed.

The policy (``GateConfig``):

* absolute floors: overall accuracy, and optionally the recall of every class;
* non-regression against the champion: the candidate passes when its accuracy is at most
  ``max_accuracy_drop`` below the champion's, *or* when the drop is not statistically significant
  at ``significance_level`` by McNemar's exact test. A regression counts only when it is both
  beyond the tolerance and significant, so scoring the same model twice never fails the gate;
* non-regression is judged on the pipeline's golden test set when both models were scored on it
  (``slipway/evaluation/golden.py``: the feed cannot poison it), else on the new split;
* data suspect: the champion's accuracy on the new split more than ``max_champion_golden_gap``
  below its accuracy on the golden set means the new data's labels or inputs are wrong; the
  candidate is rejected, not blessed as an improvement;
* ceilings on latency per example and on model size (optional).

The first model (no champion in the evaluation) is judged on the absolute checks alone; the
non-regression check is recorded as ``skipped``.

A rejection is an outcome, not a crash: ``decide`` returns a Blessing with ``blessed=False``.
A person may force a deployment with a written reason; the Blessing then says ``forced`` and keeps
the failed checks, so the override is auditable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from slipway.config import GateConfig
from slipway.errors import BadInputError
from slipway.results import EvaluateResult

Verdict = Literal["pass", "fail", "skipped"]
BYTES_PER_MB = 1_000_000
# Accuracies are ratios of integers; this keeps "exactly at the threshold" from failing on rounding.
_EPS = 1e-12


class GateOverrideError(BadInputError, ValueError):
    """A forced deployment was requested without a written reason."""


@dataclass(frozen=True)
class Check:
    """One gate check: what was measured, the threshold it was held to, and the verdict."""

    name: str
    observed: float | None
    threshold: float | None
    verdict: Verdict
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Check:
        return cls(
            name=raw["name"],
            observed=raw.get("observed"),
            threshold=raw.get("threshold"),
            verdict=raw["verdict"],
            detail=raw.get("detail", ""),
        )


@dataclass(frozen=True)
class Blessing:
    """The gate's decision for one candidate, stored with the model version."""

    blessed: bool
    checks: list[Check]
    reasons: list[str]
    decided_at: str
    forced: bool = False
    force_reason: str | None = None
    forced_by: str | None = None
    # Did the checks alone pass? (``blessed`` can be True by force while this is False.)
    policy_passed: bool = True
    champion_version: int | None = None
    policy: dict[str, Any] = field(default_factory=dict)
    # Where the candidate came from ({"kind": "sweep", "study_id": ..., "trial": ...} for a tuning
    # run's best trial); filled by the caller that knows the run, empty when unknown.
    origin: dict[str, Any] = field(default_factory=dict)

    @property
    def result(self) -> Literal["blessed", "rejected", "forced"]:
        """The ``result`` label of ``slipway_gate_decisions_total``."""
        if self.forced:
            return "forced"
        return "blessed" if self.blessed else "rejected"

    def check(self, name: str) -> Check:
        for item in self.checks:
            if item.name == name:
                return item
        raise KeyError(f"no gate check named {name!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "blessed": self.blessed,
            "result": self.result,
            "policy_passed": self.policy_passed,
            "checks": [c.to_dict() for c in self.checks],
            "reasons": list(self.reasons),
            "forced": self.forced,
            "force_reason": self.force_reason,
            "forced_by": self.forced_by,
            "decided_at": self.decided_at,
            "champion_version": self.champion_version,
            "policy": dict(self.policy),
            "origin": dict(self.origin),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Blessing:
        return cls(
            blessed=bool(raw["blessed"]),
            checks=[Check.from_dict(c) for c in raw.get("checks", [])],
            reasons=list(raw.get("reasons", [])),
            decided_at=raw.get("decided_at", ""),
            forced=bool(raw.get("forced", False)),
            force_reason=raw.get("force_reason"),
            forced_by=raw.get("forced_by"),
            policy_passed=bool(raw.get("policy_passed", raw["blessed"])),
            champion_version=raw.get("champion_version"),
            policy=dict(raw.get("policy", {})),
            origin=dict(raw.get("origin") or {}),
        )


def decide(
    policy: GateConfig,
    evaluation: EvaluateResult | Mapping[str, Any],
    *,
    force_reason: str | None = None,
    forced_by: str | None = None,
    now: datetime | None = None,
) -> Blessing:
    """Judge the candidate in ``evaluation`` (the evaluate step's result.json) against ``policy``.

    A force is requested by passing ``force_reason`` (not ``None``); an empty or blank reason
    raises ``GateOverrideError`` before anything is decided. Bad or missing numbers in
    ``evaluation`` raise ``BadInputError`` naming the field. The pipeline passes the parsed
    ``EvaluateResult``; a plain mapping of the same shape is accepted (decision tables in tests).
    """
    ev = evaluation.dump() if isinstance(evaluation, EvaluateResult) else dict(evaluation)
    reason = force_reason.strip() if force_reason is not None else None
    if reason == "":
        raise GateOverrideError("a forced deployment requires a written reason")
    champion = ev.get("champion")
    checks = [
        _accuracy_floor(policy, ev),
        _class_recall_floor(policy, ev),
        _non_regression(policy, _golden_or_new(ev))
        if champion
        else _skipped("non_regression", "no champion"),
        _data_suspect(policy, ev),
        _latency_ceiling(policy, ev),
        _size_ceiling(policy, ev),
    ]
    failed = [c for c in checks if c.verdict == "fail"]
    passed = not failed
    forced = reason is not None
    reasons = [f"{c.name}: {c.detail}" for c in failed]
    if forced:
        reasons.insert(0, f"deployment forced by {forced_by or 'an unnamed user'}: {reason}")
    if passed:
        skipped = [c.name for c in checks if c.verdict == "skipped"]
        reasons.append("all checks passed" + (f" (skipped: {', '.join(skipped)})" if skipped else ""))
    return Blessing(
        blessed=passed or forced,
        checks=checks,
        reasons=reasons,
        decided_at=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
        forced=forced,
        force_reason=reason,
        forced_by=forced_by if forced else None,
        policy_passed=passed,
        champion_version=_optional_int(champion.get("version")) if champion else None,
        policy=policy.model_dump(mode="json"),
    )


# --------------------------------------------------------------------------- checks


def _accuracy_floor(policy: GateConfig, ev: dict[str, Any]) -> Check:
    acc = _number(ev, "candidate", "accuracy")
    ok = acc + _EPS >= policy.min_accuracy
    relation = "at or above" if ok else "below"
    return Check(
        "accuracy_floor",
        acc,
        policy.min_accuracy,
        _verdict(ok),
        f"accuracy {acc:.4f} is {relation} the floor",
    )


def _class_recall_floor(policy: GateConfig, ev: dict[str, Any]) -> Check:
    if policy.min_class_recall is None:
        return _skipped("class_recall_floor", "no per-class recall floor configured")
    rows = _field(ev, "candidate", "per_class")
    recalls = [(str(r.get("name", r.get("class"))), r["recall"]) for r in rows if r.get("recall") is not None]
    if not recalls:
        return _skipped("class_recall_floor", "no class has test examples")
    worst = min(value for _, value in recalls)
    below = [f"{name} ({value:.3f})" for name, value in recalls if value + _EPS < policy.min_class_recall]
    detail = (
        f"classes below the floor: {', '.join(below)}"
        if below
        else f"lowest class recall {worst:.4f} is at or above the floor"
    )
    return Check("class_recall_floor", float(worst), policy.min_class_recall, _verdict(not below), detail)


def _non_regression(policy: GateConfig, ev: dict[str, Any]) -> Check:
    cand = _number(ev, "candidate", "accuracy")
    champ = _number(ev, "champion", "accuracy")
    delta = _number(ev, "comparison", "accuracy_delta")
    p_value = _number(ev, "comparison", "mcnemar_p_value")
    comparison = ev["comparison"]
    discordant = (
        f"{comparison.get('candidate_only', '?')} examples only the candidate gets right,"
        f" {comparison.get('champion_only', '?')} only the champion"
    )
    head = (
        f"candidate {cand:.4f} vs champion {champ:.4f}"
        f" (delta {delta:+.4f}, McNemar p={p_value:.3g}; {discordant})"
    )
    tolerance = policy.max_accuracy_drop
    alpha = policy.significance_level
    if delta + _EPS >= -tolerance:
        ok, why = True, f"within the tolerance of {tolerance:.4f}"
    elif p_value >= alpha:
        ok, why = True, f"drop beyond the tolerance of {tolerance:.4f} but not significant (p >= {alpha})"
    else:
        ok, why = False, f"significant regression beyond the tolerance of {tolerance:.4f} (p < {alpha})"
    on = ev.get("_on")
    return Check(
        "non_regression", delta, -tolerance, _verdict(ok), f"{on}: {head}: {why}" if on else f"{head}: {why}"
    )


def _golden_or_new(ev: dict[str, Any]) -> dict[str, Any]:
    """The figures non-regression is judged on: the golden set's when both models were scored
    on it (the feed cannot poison it), else the new split's. ``_on`` names which."""
    golden = ev.get("golden") or {}
    if golden.get("champion") and golden.get("comparison"):
        rows = golden.get("candidate", {}).get("test_rows", golden.get("rows"))
        return {**golden, "_on": f"on the golden set ({rows} examples)"}
    return {**ev, "_on": "on the new split (no golden set yet)"}


def _data_suspect(policy: GateConfig, ev: dict[str, Any]) -> Check:
    """The champion's accuracy on the new split far below its accuracy on the golden set: the
    new data, not the model, changed - its labels or inputs are suspect, and a candidate trained
    on it is not blessed as an improvement."""
    golden_champion = (ev.get("golden") or {}).get("champion")
    if not ev.get("champion") or not golden_champion:
        return _skipped("data_suspect", "needs a champion scored on a golden set")
    on_new = _number(ev, "champion", "accuracy")
    on_golden = _number(ev, "golden", "champion", "accuracy")
    gap = on_golden - on_new
    bound = policy.max_champion_golden_gap
    ok = gap <= bound + _EPS
    who = f"champion v{ev['champion'].get('version', '?')}"
    head = (
        f"{who} accuracy on the new split {on_new:.4f} vs {on_golden:.4f} on the golden set (gap {gap:+.4f})"
    )
    why = (
        "within the bound"
        if ok
        else "data suspect: the new split's labels or inputs do not match the golden set"
    )
    return Check("data_suspect", gap, bound, _verdict(ok), f"{head}: {why}")


def _latency_ceiling(policy: GateConfig, ev: dict[str, Any]) -> Check:
    ceiling = policy.max_latency_ms_per_example
    if ceiling is None:
        return _skipped("latency_ceiling", "no latency ceiling configured")
    observed = _number(ev, "candidate", "latency", "ms_per_example")
    batch = _field(ev, "candidate", "latency").get("batch_size", "?")
    ok = observed <= ceiling + _EPS
    where = "within" if ok else "over"
    detail = f"median {observed:.4f} ms per example at batch size {batch} is {where} the ceiling"
    return Check("latency_ceiling", observed, ceiling, _verdict(ok), detail)


def _size_ceiling(policy: GateConfig, ev: dict[str, Any]) -> Check:
    ceiling = policy.max_model_size_mb
    if ceiling is None:
        return _skipped("size_ceiling", "no model size ceiling configured")
    observed = _number(ev, "candidate", "size", "model_file_bytes") / BYTES_PER_MB
    ok = observed <= ceiling + _EPS
    detail = f"model.keras is {observed:.3f} MB, {'within' if ok else 'over'} the ceiling"
    return Check("size_ceiling", observed, ceiling, _verdict(ok), detail)


# --------------------------------------------------------------------------- helpers


def _skipped(name: str, why: str) -> Check:
    return Check(name, None, None, "skipped", why)


def _verdict(ok: bool) -> Verdict:
    return "pass" if ok else "fail"


def _field(ev: dict[str, Any], *path: str) -> Any:
    node: Any = ev
    for i, part in enumerate(path):
        if not isinstance(node, dict) or node.get(part) is None:
            raise BadInputError(
                f"evaluation result lacks '{'.'.join(path[: i + 1])}' (not an evaluate result?)"
            )
        node = node[part]
    return node


def _number(ev: dict[str, Any], *path: str) -> float:
    value = _field(ev, *path)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInputError(f"evaluation result field '{'.'.join(path)}' must be a number, got {value!r}")
    return float(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)
