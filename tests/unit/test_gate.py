"""The gate's decision table, the Blessing record, and forced deployments (pure, no TensorFlow)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from slipway.config import GateConfig
from slipway.errors import BadInputError
from slipway.evaluation.gate import Blessing, GateOverrideError, decide

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def evaluation(
    acc: float = 0.95,
    champ_acc: float | None = 0.95,
    p: float = 1.0,
    recalls: tuple[float | None, ...] = (0.95, 0.95),
    ms_per_example: float = 0.1,
    size_bytes: int = 2_000_000,
) -> dict[str, Any]:
    """A minimal evaluate result.json with the fields the gate reads."""
    per_class = [{"class": i, "name": f"c{i}", "recall": r} for i, r in enumerate(recalls)]
    ev: dict[str, Any] = {
        "candidate": {
            "accuracy": acc,
            "per_class": per_class,
            "latency": {"batch_size": 32, "ms_per_example": ms_per_example},
            "size": {"model_file_bytes": size_bytes},
        },
        "champion": None,
        "comparison": None,
    }
    if champ_acc is not None:
        ev["champion"] = {"accuracy": champ_acc, "version": 3}
        ev["comparison"] = {
            "accuracy_delta": acc - champ_acc,
            "mcnemar_p_value": p,
            "candidate_only": 10,
            "champion_only": 20,
        }
    return ev


POLICY = GateConfig(
    min_accuracy=0.9,
    min_class_recall=0.8,
    max_accuracy_drop=0.01,
    significance_level=0.05,
    max_latency_ms_per_example=1.0,
    max_model_size_mb=5.0,
)

# (case, evaluation kwargs, blessed, {check: verdict})
TABLE: list[tuple[str, dict[str, Any], bool, dict[str, str]]] = [
    ("all good, same as champion", {}, True, {"non_regression": "pass", "accuracy_floor": "pass"}),
    ("better than champion", {"acc": 0.97, "p": 0.001}, True, {"non_regression": "pass"}),
    ("below accuracy floor", {"acc": 0.85, "champ_acc": 0.85}, False, {"accuracy_floor": "fail"}),
    ("exactly at the floor", {"acc": 0.9, "champ_acc": 0.9}, True, {"accuracy_floor": "pass"}),
    ("one class below recall floor", {"recalls": (0.95, 0.7)}, False, {"class_recall_floor": "fail"}),
    ("class without examples is ignored", {"recalls": (0.95, None)}, True, {"class_recall_floor": "pass"}),
    ("drop within tolerance", {"acc": 0.945, "p": 0.001}, True, {"non_regression": "pass"}),
    ("drop exactly at tolerance", {"acc": 0.94, "p": 0.001}, True, {"non_regression": "pass"}),
    ("drop beyond tolerance, not significant", {"acc": 0.93, "p": 0.2}, True, {"non_regression": "pass"}),
    ("drop beyond tolerance at p = alpha", {"acc": 0.93, "p": 0.05}, True, {"non_regression": "pass"}),
    ("significant regression", {"acc": 0.93, "p": 0.01}, False, {"non_regression": "fail"}),
    ("first model, good", {"champ_acc": None}, True, {"non_regression": "skipped"}),
    ("first model, below floor", {"acc": 0.5, "champ_acc": None}, False, {"accuracy_floor": "fail"}),
    ("too slow", {"ms_per_example": 1.5}, False, {"latency_ceiling": "fail"}),
    ("too big", {"size_bytes": 5_000_001}, False, {"size_ceiling": "fail"}),
    ("size exactly at ceiling", {"size_bytes": 5_000_000}, True, {"size_ceiling": "pass"}),
    (
        "everything wrong at once",
        {"acc": 0.5, "p": 1e-9, "recalls": (0.1, 0.9), "ms_per_example": 9.0, "size_bytes": 10**8},
        False,
        {n: "fail" for n in ("accuracy_floor", "class_recall_floor", "non_regression", "latency_ceiling")},
    ),
]


@pytest.mark.parametrize(("case", "kwargs", "blessed", "verdicts"), TABLE, ids=[row[0] for row in TABLE])
def test_decision_table(case: str, kwargs: dict[str, Any], blessed: bool, verdicts: dict[str, str]) -> None:
    blessing = decide(POLICY, evaluation(**kwargs), now=NOW)
    assert blessing.blessed is blessed, blessing.reasons
    assert blessing.policy_passed is blessed and not blessing.forced
    assert blessing.result == ("blessed" if blessed else "rejected")
    for name, verdict in verdicts.items():
        assert blessing.check(name).verdict == verdict, blessing.check(name).detail
    failed = [c.name for c in blessing.checks if c.verdict == "fail"]
    assert len(blessing.reasons) == (1 if blessed else len(failed))


def test_every_check_is_recorded_with_numbers() -> None:
    blessing = decide(POLICY, evaluation(acc=0.93, p=0.01), now=NOW)
    assert [c.name for c in blessing.checks] == [
        "accuracy_floor",
        "class_recall_floor",
        "non_regression",
        "data_suspect",
        "latency_ceiling",
        "size_ceiling",
    ]
    regression = blessing.check("non_regression")
    assert regression.observed == pytest.approx(-0.02) and regression.threshold == -0.01
    assert "p=0.01" in regression.detail and "significant regression" in regression.detail
    assert blessing.check("size_ceiling").observed == pytest.approx(2.0)
    assert blessing.champion_version == 3
    assert blessing.policy["max_accuracy_drop"] == 0.01
    assert blessing.decided_at == "2026-01-02T03:04:05+00:00"
    assert any("non_regression" in r for r in blessing.reasons)


def test_optional_checks_are_skipped_not_dropped() -> None:
    blessing = decide(GateConfig(), evaluation(champ_acc=None), now=NOW)
    verdicts = {c.name: c.verdict for c in blessing.checks}
    assert verdicts == {
        "accuracy_floor": "pass",
        "class_recall_floor": "skipped",
        "non_regression": "skipped",
        "data_suspect": "skipped",
        "latency_ceiling": "skipped",
        "size_ceiling": "skipped",
    }
    assert blessing.check("non_regression").detail == "no champion"
    assert blessing.blessed and "skipped" in blessing.reasons[-1]


def test_blessing_round_trips_through_json() -> None:
    blessing = decide(POLICY, evaluation(acc=0.5, p=1e-6), force_reason="hotfix", forced_by="ann", now=NOW)
    raw = json.loads(json.dumps(blessing.to_dict()))
    assert Blessing.from_dict(raw) == blessing
    assert raw["result"] == "forced"
    assert set(raw) == {
        "blessed",
        "result",
        "policy_passed",
        "checks",
        "reasons",
        "forced",
        "force_reason",
        "forced_by",
        "decided_at",
        "champion_version",
        "policy",
        "origin",
    }
    assert set(raw["checks"][0]) == {"name", "observed", "threshold", "verdict", "detail"}


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_force_requires_a_written_reason(reason: str) -> None:
    with pytest.raises(GateOverrideError, match="a forced deployment requires a written reason") as info:
        decide(POLICY, evaluation(acc=0.5), force_reason=reason, forced_by="ann")
    assert isinstance(info.value, ValueError) and isinstance(info.value, BadInputError)


def test_force_is_recorded_and_keeps_the_failed_checks() -> None:
    blessing = decide(
        POLICY,
        evaluation(acc=0.93, p=0.01),
        force_reason="  incident 42: ship the fix  ",
        forced_by="ann",
        now=NOW,
    )
    assert blessing.blessed and blessing.forced and not blessing.policy_passed
    assert blessing.force_reason == "incident 42: ship the fix" and blessing.forced_by == "ann"
    assert blessing.check("non_regression").verdict == "fail"
    assert blessing.reasons[0] == "deployment forced by ann: incident 42: ship the fix"
    assert blessing.result == "forced"


def test_no_force_means_no_override_fields() -> None:
    blessing = decide(POLICY, evaluation(), forced_by="ann", now=NOW)
    assert not blessing.forced and blessing.forced_by is None and blessing.force_reason is None


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda ev: ev["candidate"].pop("accuracy"), "candidate.accuracy"),
        (lambda ev: ev.update(comparison=None), "comparison"),
        (lambda ev: ev["candidate"].update(accuracy="0.9"), "candidate.accuracy"),
    ],
)
def test_malformed_evaluation_names_the_field(mutate: Any, field: str) -> None:
    ev = evaluation()
    mutate(ev)
    with pytest.raises(BadInputError, match=field):
        decide(POLICY, ev)


def test_gate_and_blessing_html_import_without_tensorflow_or_matplotlib() -> None:
    """The gate runs in the Airflow worker, whose image has neither."""
    import subprocess
    import sys

    code = (
        "import sys, slipway.evaluation.gate, slipway.evaluation.report;"
        "heavy = {'tensorflow', 'keras', 'matplotlib', 'sklearn'} & set(sys.modules);"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def with_golden(ev: dict[str, Any], cand: float, champ: float, p: float = 1e-6) -> dict[str, Any]:
    """Add the golden-set figures the evaluate step writes (candidate and champion on it)."""
    return {
        **ev,
        "golden": {
            "source": "snapshot",
            "rows": 400,
            "candidate": {"accuracy": cand, "test_rows": 400},
            "champion": {"accuracy": champ, "version": 3},
            "comparison": {
                "accuracy_delta": cand - champ,
                "mcnemar_p_value": p,
                "candidate_only": 1,
                "champion_only": 300,
            },
        },
    }


def test_poisoned_feed_is_data_suspect_and_regression_is_judged_on_golden() -> None:
    # Labels wrong in the feed's train and test parts: on the new split the candidate (trained on
    # them) looks great and the champion terrible; on the golden set it is the other way round.
    ev = with_golden(evaluation(acc=0.97, champ_acc=0.08, p=1e-9), cand=0.05, champ=0.94)
    blessing = decide(POLICY, ev, now=NOW)
    assert not blessing.blessed and blessing.result == "rejected"
    suspect = blessing.check("data_suspect")
    assert suspect.verdict == "fail" and suspect.observed == pytest.approx(0.86)
    assert "0.0800" in suspect.detail and "0.9400" in suspect.detail and "data suspect" in suspect.detail
    regression = blessing.check("non_regression")
    assert regression.verdict == "fail" and regression.observed == pytest.approx(-0.89)
    assert regression.detail.startswith("on the golden set (400 examples)")
    assert any(
        r.startswith("data_suspect: champion v3 accuracy on the new split 0.0800") for r in blessing.reasons
    )


def test_golden_set_passes_a_real_improvement_and_force_is_recorded() -> None:
    ev = with_golden(evaluation(acc=0.96, champ_acc=0.95), cand=0.955, champ=0.95, p=0.3)
    blessing = decide(POLICY, ev, now=NOW)
    assert blessing.blessed, blessing.reasons
    assert blessing.check("data_suspect").verdict == "pass"
    assert blessing.check("non_regression").detail.startswith("on the golden set")

    poisoned = with_golden(evaluation(acc=0.97, champ_acc=0.08, p=1e-9), cand=0.05, champ=0.94)
    forced = decide(
        POLICY, poisoned, force_reason="known relabelling, approved by QA", forced_by="ana", now=NOW
    )
    assert forced.blessed and forced.forced and not forced.policy_passed
    assert forced.check("data_suspect").verdict == "fail"
    assert "known relabelling" in forced.reasons[0]


def test_without_golden_non_regression_uses_the_new_split() -> None:
    blessing = decide(POLICY, evaluation(), now=NOW)
    assert blessing.check("data_suspect").verdict == "skipped"
    assert blessing.check("non_regression").detail.startswith("on the new split")
