"""The validation report: every expectation with its threshold, observed value and outcome.

``ValidationReport.to_dict()`` is the body of ``validate/result.json``; ``failure_message()`` is
what the failed run shows (each failed expectation with what was observed) and ``summary()`` the
one line the step's log ends with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from slipway.validation.drift import DriftStatistic
from slipway.validation.suite import Check


def jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars unwrapped, NaN as null, infinities as strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return round(value, 8)
    return value


@dataclass
class CheckOutcome:
    check: Check
    success: bool
    observed: Any
    message: str
    gx: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        expectation = self.check.expectation
        return jsonable(
            {
                "id": self.check.id,
                "expectation": self.check.title,
                "type": expectation.expectation_type,
                "suite": self.check.batch,
                "column": getattr(expectation, "column", None),
                "threshold": self.check.threshold,
                "observed": self.observed,
                "success": self.success,
                "message": self.message,
                "gx_result": self.gx,
            }
        )


def _observed(check: Check, gx_result: dict[str, Any], one_row: dict[str, Any]) -> Any:
    if check.observed_column is not None:
        return one_row.get(check.observed_column)
    if "observed_value" in gx_result:
        value = gx_result["observed_value"]
        if check.id == "rows.duplicates" and value is not None:
            return {"unique_fraction": value, "duplicate_fraction": 1 - value}
        return value
    return {
        "unexpected_rows": gx_result.get("unexpected_count"),
        "unexpected_percent": gx_result.get("unexpected_percent"),
        "examples": (gx_result.get("partial_unexpected_list") or [])[:5],
    }


def _message(check: Check, observed: Any, gx_result: dict[str, Any], facts: dict[str, Any]) -> str:
    fields = {**facts, **gx_result, "observed": observed}
    fields["unexpected_rows"] = gx_result.get("unexpected_count")
    try:
        detail = check.failure.format(**fields)
    except (KeyError, ValueError, TypeError, IndexError):
        detail = f"observed {jsonable(observed)}"
    return f"{check.id} ({check.title}): {detail}"


def outcome_of(check: Check, result: Any, facts: dict[str, Any], one_row: dict[str, Any]) -> CheckOutcome:
    """Turn one GX ``ExpectationValidationResult`` (or None: not evaluated) into an outcome."""
    if result is None:
        return CheckOutcome(check, False, None, f"{check.id} ({check.title}): not evaluated", {})
    gx_result = dict(result.result or {})
    error = (result.exception_info or {}).get("exception_message") if not result.success else None
    observed = _observed(check, gx_result, one_row)
    if error:
        message = f"{check.id} ({check.title}): could not be evaluated: {error}"
    else:
        message = _message(check, observed, gx_result, facts) if not result.success else ""
    trimmed = {k: v for k, v in gx_result.items() if k not in ("partial_unexpected_index_list",)}
    return CheckOutcome(check, bool(result.success), observed, message, trimmed)


@dataclass
class ValidationReport:
    outcomes: list[CheckOutcome]
    drift: list[DriftStatistic]
    reference: dict[str, Any]
    facts: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    # The partition's and the reference's structure summaries, for the pictures (not in to_dict).
    structure: dict[str, Any] | None = None
    reference_structure: dict[str, Any] | None = None

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)

    @property
    def failed(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes if not o.success]

    def failure_message(self, subject: str = "data") -> str:
        failed = self.failed
        lines = [f"{subject} failed validation: {len(failed)} of {len(self.outcomes)} expectations failed"]
        lines += [f"  - {o.message}" for o in failed]
        return "\n".join(lines)

    def summary(self) -> str:
        verdict = "PASSED" if self.success else "FAILED"
        passed = len(self.outcomes) - len(self.failed)
        head = f"validation {verdict}: {self.facts.get('rows', 0)} rows, {passed}/{len(self.outcomes)} expectations met"
        if self.drift:
            drift = ", ".join(f"{d.name} {d.value:.3f}/{d.effective_threshold:.3g}" for d in self.drift)
            head += f"; drift {drift}"
        else:
            head += f"; drift: {self.reference.get('status', 'not checked')}"
        if self.failed:
            head += "; failed: " + ", ".join(o.check.id for o in self.failed)
        return head

    def to_dict(self) -> dict[str, Any]:
        return jsonable(
            {
                "success": self.success,
                "rows": self.facts.get("rows", 0),
                "evaluated_expectations": len(self.outcomes),
                "failed_expectations": len(self.failed),
                "failed": [o.check.id for o in self.failed],
                "failure_messages": [o.message for o in self.failed],
                "expectations": [o.to_dict() for o in self.outcomes],
                "drift": {
                    "reference": self.reference,
                    "statistics": {
                        (d.name if d.group == "drift" else f"{d.group}.{d.name}"): d.to_dict()
                        for d in self.drift
                    },
                },
                "facts": self.facts,
                "timings_seconds": {k: round(v, 4) for k, v in self.timings.items()},
                "summary": self.summary(),
            }
        )
