"""The one fail-fast rule (``operators/errors.py``) in every operator: bad input fails the task
without retry (``AirflowFailException``), anything else is retried (a plain ``AirflowException``).

The step operator's exit-code mapping runs against a launcher that reports a given outcome; the
release operators run for real on a ``file://`` store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow.sdk.exceptions import AirflowException, AirflowFailException

import operators.step as step_module
from operators.errors import airflow_errors, for_exit_code, to_airflow
from operators.launchers import StepLauncher, StepOutcome, StepRequest
from operators.release import SlipwayGateOperator, SlipwayPromoteOperator, SlipwayRegisterOperator
from operators.step import SlipwayStepOperator
from slipway.config import ConfigError
from slipway.data.dataset import DataError
from slipway.errors import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, StepInputMissing
from slipway.evaluation.gate import GateOverrideError
from slipway.registry import ModelRegistry
from slipway.release import CandidateNotBlessed, ChampionMoved, promote_candidate
from slipway.steps.context import RunContext
from slipway.store import StoreError
from tests.results_fixtures import blessed_and_registered, evaluated_run, ingest_result, release_batch


def _retried(exc: BaseException) -> bool:
    return isinstance(exc, AirflowException) and not isinstance(exc, AirflowFailException)


@pytest.mark.parametrize(
    "error",
    [
        ConfigError("bad config"),
        DataError("bad data"),
        GateOverrideError("no reason"),
        CandidateNotBlessed("not blessed"),
        ChampionMoved("moved"),
    ],
)
def test_bad_input_is_not_retried(error: Exception) -> None:
    mapped = to_airflow(error, "promote")
    assert isinstance(mapped, AirflowFailException) and str(error) in str(mapped)


@pytest.mark.parametrize(
    "error", [StepInputMissing("no result"), StoreError("store down"), RuntimeError("boom"), OSError("disk")]
)
def test_everything_else_is_retried(error: Exception) -> None:
    assert _retried(to_airflow(error, "promote"))
    with pytest.raises(AirflowException) as info, airflow_errors("promote"):
        raise error
    assert _retried(info.value) and info.value.__cause__ is error


def test_exit_codes() -> None:
    assert isinstance(for_exit_code(EXIT_BAD_INPUT, "step ingest", "why"), AirflowFailException)
    assert _retried(for_exit_code(EXIT_FAILURE, "step ingest", "why"))
    assert _retried(for_exit_code(-9, "step train", "killed"))


# --------------------------------------------------------------------------- step operator


def _config_file(tmp_path: Path) -> Path:
    path = tmp_path / "digits.yaml"
    config = {
        "name": "digits",
        "model_name": "digits",
        "store_url": f"file://{tmp_path / 'store'}",
        "data": {"source": {"kind": "digits", "scale": 16}, "input_shape": [8, 8], "num_classes": 10},
        "gate": {"min_accuracy": 0.5},
        "metrics": {"textfile_dir": str(tmp_path / "metrics")},
    }
    path.write_text(yaml.safe_dump(config))
    return path


class _TI:
    def __init__(self, pulled: Any = None) -> None:
        self.pushed: dict[str, Any] = {}
        self.pulled = pulled

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value

    def xcom_pull(self, task_ids: str) -> Any:
        return self.pulled


class _Reporting(StepLauncher):
    """A launcher that reports a fixed outcome and, like a real step, leaves ``stored`` as the
    step's result.json in the store (the local launcher's own tests run real steps)."""

    def __init__(self, outcome: StepOutcome, stored: dict[str, Any] | None = None) -> None:
        self.outcome = outcome
        self.stored = stored
        self.requests: list[StepRequest] = []

    def launch(self, request: StepRequest, log: Any) -> StepOutcome:
        self.requests.append(request)
        if self.stored is not None:
            ctx = RunContext.create(request.config, request.run_id)
            ctx.store.put_json(ctx.result_key(request.step), self.stored)
        return self.outcome


def _run_step(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    outcome: StepOutcome,
    params: dict[str, Any] | None = None,
    stored: dict[str, Any] | None = None,
) -> tuple[Any, _TI, _Reporting]:
    launcher = _Reporting(outcome, stored)
    monkeypatch.setattr(step_module, "launcher_for", lambda config: launcher)
    operator = SlipwayStepOperator(task_id="ingest", step="ingest", config_path=str(_config_file(tmp_path)))
    ti = _TI()
    result = operator.execute({"params": params or {}, "run_id": "run-1", "ti": ti})
    return result, ti, launcher


def test_step_exit_0_returns_the_parsed_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reported = ingest_result("datasets/digits/abc").dump()
    result, _, launcher = _run_step(tmp_path, monkeypatch, StepOutcome(EXIT_OK, []), stored=reported)
    assert result == reported and launcher.requests[0].run_id == "run-1"


def test_step_exit_0_with_a_broken_result_is_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = {**ingest_result("datasets/digits/abc").dump(), "rows": {"train": 1}}
    with pytest.raises(AirflowFailException, match=r"rows\.validation: Field required"):
        _run_step(tmp_path, monkeypatch, StepOutcome(EXIT_OK, []), stored=broken)


def test_step_exit_65_fails_without_retry_and_keeps_the_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tail = ["INFO reading", "error: 2 expectations failed", "  - values.max: observed 3.0"]
    with pytest.raises(AirflowFailException, match=r"(?s)rejected its input.*values\.max: observed 3\.0"):
        _run_step(tmp_path, monkeypatch, StepOutcome(EXIT_BAD_INPUT, tail))


@pytest.mark.parametrize("code", [EXIT_FAILURE, -9, 137])
def test_step_other_exit_codes_are_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    with pytest.raises(AirflowException) as info:
        _run_step(tmp_path, monkeypatch, StepOutcome(code, ["error: store unreachable"]))
    assert _retried(info.value) and f"exit code {code}" in str(info.value)


def test_step_exit_0_without_result_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AirflowException, match=r"left no result\.json") as info:
        _run_step(tmp_path, monkeypatch, StepOutcome(EXIT_OK, []))
    assert _retried(info.value)


def test_step_bad_params_fail_before_launch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AirflowFailException, match=r"training\.epochs"):
        _run_step(tmp_path, monkeypatch, StepOutcome(EXIT_OK, []), params={"epochs": 0})


def test_failed_step_pushes_its_stored_result_for_the_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path = _config_file(tmp_path)
    from slipway.config import load_config

    ctx = RunContext.create(load_config(config_path), "run-1")
    ctx.write_result("ingest", ingest_result("datasets/digits/abc"))
    launcher = _Reporting(StepOutcome(EXIT_BAD_INPUT, ["error: bad"]))
    monkeypatch.setattr(step_module, "launcher_for", lambda config: launcher)
    ti = _TI()
    operator = SlipwayStepOperator(task_id="ingest", step="ingest", config_path=str(config_path))
    with pytest.raises(AirflowFailException):
        operator.execute({"params": {}, "run_id": "run-1", "ti": ti})
    assert ti.pushed["return_value"]["snapshot_key"] == "datasets/digits/abc"


# --------------------------------------------------------------------------- release operators


def _context(run_id: str, params: dict[str, Any] | None = None, registered: Any = None) -> dict[str, Any]:
    return {"params": params or {}, "run_id": run_id, "ti": _TI(pulled=registered), "dag_run": None}


@pytest.mark.parametrize(
    "operator_class", [SlipwayGateOperator, SlipwayRegisterOperator, SlipwayPromoteOperator]
)
def test_release_operators_do_not_retry_a_bad_config(tmp_path: Path, operator_class: type) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: digits\nmodel_name: digits\nstore_url: file://./s\ndata: {}\nepoch: 3\n")
    operator = operator_class(task_id="t", config_path=str(bad))
    with pytest.raises(AirflowFailException, match=r"(?s)invalid pipeline config .*epoch: unknown field"):
        operator.execute(_context("run-1", registered={"version": 1}))


def test_gate_force_without_reason_is_not_retried(tmp_path: Path) -> None:
    operator = SlipwayGateOperator(task_id="gate", config_path=str(_config_file(tmp_path)))
    with pytest.raises(AirflowFailException, match="requires a written reason"):
        operator.execute(_context("run-1", params={"force_deploy": True, "force_reason": "  "}))


def test_gate_without_evaluation_is_retried(tmp_path: Path) -> None:
    operator = SlipwayGateOperator(task_id="gate", config_path=str(_config_file(tmp_path)))
    with pytest.raises(AirflowException, match="run evaluate first") as info:
        operator.execute(_context("never-evaluated"))
    assert _retried(info.value)


def test_register_of_a_rejected_candidate_is_not_retried(tmp_path: Path) -> None:
    from slipway.config import load_config
    from slipway.release import judge_candidate

    config_path = _config_file(tmp_path)
    run = evaluated_run(load_config(config_path), "run-1", judged_against=None, accuracy=0.3)
    assert not judge_candidate(run, release_batch()).blessed
    operator = SlipwayRegisterOperator(task_id="register", config_path=str(config_path))
    with pytest.raises(AirflowFailException, match="the gate did not bless it"):
        operator.execute(_context("run-1"))


def test_promote_after_the_champion_moved_is_not_retried(tmp_path: Path) -> None:
    from slipway.config import load_config

    config_path = _config_file(tmp_path)
    config = load_config(config_path)
    run_a = evaluated_run(config, "run-a", judged_against=None)
    run_b = evaluated_run(config, "run-b", judged_against=None)
    version_a, version_b = blessed_and_registered(run_a), blessed_and_registered(run_b)
    promote_candidate(run_b, release_batch(), version_b)
    operator = SlipwayPromoteOperator(task_id="promote", config_path=str(config_path))
    with pytest.raises(AirflowFailException, match="judged against no champion, but the champion is now v2"):
        operator.execute(_context("run-a", registered={"version": version_a}))
    assert ModelRegistry(run_a.store, "digits").get_alias("champion") == version_b


# --------------------------------------------------------------------------- canary operator


def _canary_config(tmp_path: Path) -> Path:
    """The digits config with a rollout whose router and servers are on closed ports."""
    from slipway.rollout.sandbox import free_port

    path = _config_file(tmp_path)
    config = yaml.safe_load(path.read_text())
    urls = {name: f"http://127.0.0.1:{free_port()}" for name in ("router", "stable", "canary")}
    config["rollout"] = {
        "enabled": True,
        "router_url": urls["router"],
        "stable_url": urls["stable"],
        "canary_url": urls["canary"],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def _canary(config_path: Path) -> Any:
    from operators.canary import SlipwayCanaryOperator

    return SlipwayCanaryOperator(task_id="canary", config_path=str(config_path))


def _rollout_record(config_path: Path, run_id: str) -> tuple[Any, str]:
    from operators.canary import rollout_key
    from slipway.config import load_config
    from slipway.store import open_store

    config = load_config(config_path)
    return open_store(config.store_url), rollout_key(config, run_id)


def test_canary_skip_without_reason_is_not_retried_and_records_nothing(tmp_path: Path) -> None:
    config_path = _canary_config(tmp_path)
    context = _context(
        "run-1", params={"skip_canary": True, "skip_canary_reason": " "}, registered={"version": 1}
    )
    with pytest.raises(
        AirflowFailException, match=r"canary rejected its input \(no retry\): .*skip_canary_reason"
    ):
        _canary(config_path).execute(context)
    store, key = _rollout_record(config_path, "run-1")
    assert not store.exists(key)


def test_canary_without_a_registered_version_is_not_retried(tmp_path: Path) -> None:
    with pytest.raises(AirflowFailException, match="no registered version from task 'register'"):
        _canary(_canary_config(tmp_path)).execute(_context("run-1", registered=None))


def test_canary_with_a_bad_config_is_not_retried(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: digits\nmodel_name: digits\nstore_url: file://./s\ndata: {}\nrollout: {steps: [50, 10]}\n"
    )
    with pytest.raises(AirflowFailException, match="steps must be increasing"):
        _canary(bad).execute(_context("run-1", registered={"version": 1}))


def test_canary_resume_without_its_record_is_not_retried(tmp_path: Path) -> None:
    with pytest.raises(AirflowFailException, match=r"rollout record .* is gone: cannot resume"):
        _canary(_canary_config(tmp_path)).resume(_context("run-1"), event=None)


def test_canary_over_a_rollout_of_another_version_is_not_retried(tmp_path: Path) -> None:
    config_path = _canary_config(tmp_path)
    store, key = _rollout_record(config_path, "run-1")
    store.put_json(key, {"candidate": 5, "status": "running", "progress": {"step": 1}})
    with pytest.raises(AirflowFailException, match="holds a rollout of v5, not v6: refusing to mix them"):
        _canary(config_path).execute(_context("run-1", registered={"version": 6}))
    assert store.get_json(key)["candidate"] == 5


def test_canary_with_the_router_down_is_retried_and_keeps_the_record(tmp_path: Path) -> None:
    """A due analysis finds the canary gone and rolls back, but the router does not answer: the
    task is retried (a retry resumes this rollout) and the stored record is unchanged."""
    config_path = _canary_config(tmp_path)
    store, key = _rollout_record(config_path, "run-1")
    record = {
        "model": "digits",
        "candidate": 2,
        "stable": 1,
        "status": "running",
        "reason": "",
        "started": 0.0,
        "traffic_started": 0.0,
        "finished": None,
        "canary": {"pid": 0, "url": "http://127.0.0.1:1"},
        "progress": {"step": 1, "step_started": 0.0, "successes": 0, "failures": 0},
        "weights": {"stable": 75, "canary": 25},
        "mark": {},
        "due": 0.0,
        "analyses": [],
    }
    store.put_json(key, record)
    with pytest.raises(AirflowException) as info:
        _canary(config_path).resume(_context("run-1"), event=None)
    assert _retried(info.value) and "canary failed" in str(info.value)
    assert store.get_json(key) == record
