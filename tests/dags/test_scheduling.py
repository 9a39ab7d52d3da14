"""Scheduling from config: cron, new data (Asset), both, retries, timeouts and the deadline alert."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def write_pipeline(folder: Path, name: str, **top) -> None:
    config = {
        "name": name,
        "model_name": name,
        "owner": "tests",
        "store_url": f"file://{folder / 'store'}",
        "data": {"source": {"kind": "digits"}, "input_shape": [8, 8], "num_classes": 10},
        "metrics": {"textfile_dir": str(folder / "metrics")},
        **top,
    }
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory):
    from airflow.dag_processing.dagbag import DagBag

    folder = tmp_path_factory.mktemp("pipelines")
    write_pipeline(folder, "manual")
    write_pipeline(folder, "cron", schedule="0 3 * * 1")
    write_pipeline(folder, "data", orchestration={"data_asset": "s3://lake/digits/partitions"})
    write_pipeline(
        folder,
        "both",
        schedule="@daily",
        orchestration={
            "data_asset": "file:///data/digits",
            "retries": 4,
            "retry_delay_seconds": 10,
            "max_retry_delay_seconds": 120,
            "task_timeout_minutes": 20,
            "step_timeout_minutes": {"train": 90},
            "run_deadline_minutes": 45,
        },
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLIPWAY_PIPELINES_DIR", str(folder))
        dagbag = DagBag(dag_folder=str(REPO / "dags"))
    assert dagbag.import_errors == {}
    return dagbag, folder


def test_schedules(bag) -> None:
    from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable

    dags, _ = bag
    assert dags.dags["retrain_manual"].schedule is None
    assert dags.dags["retrain_cron"].schedule == "0 3 * * 1"
    assert dags.dags["retrain_data"].schedule == [Asset(name="data_data", uri="s3://lake/digits/partitions")]
    both = dags.dags["retrain_both"].timetable
    assert isinstance(both, AssetOrTimeSchedule)
    assert isinstance(both.timetable, CronTriggerTimetable)
    for dag in dags.dags.values():
        assert dag.catchup is False and dag.max_active_runs == 1


def test_retries_and_timeouts(bag) -> None:
    dags, _ = bag
    default = dags.dags["retrain_manual"]
    for task in default.tasks:
        assert task.retries == 2 and task.retry_exponential_backoff == 2.0
        assert task.max_retry_delay == timedelta(minutes=10)
    assert default.get_task("train").execution_timeout == timedelta(hours=4)
    assert default.get_task("ingest").execution_timeout == timedelta(hours=1)
    tuned = dags.dags["retrain_both"]
    assert tuned.get_task("gate").retries == 4 and tuned.get_task("gate").retry_delay == timedelta(seconds=10)
    assert tuned.get_task("train").execution_timeout == timedelta(minutes=90)
    assert tuned.get_task("evaluate").execution_timeout == timedelta(minutes=20)


def test_retry_policy_fails_bad_input_and_retries_the_rest(bag) -> None:
    from airflow.sdk.definitions.retry_policy import RetryAction
    from airflow.sdk.exceptions import ParamValidationError

    from slipway.config import ConfigError
    from slipway.errors import BadInputError

    policy = bag[0].dags["retrain_manual"].get_task("register").retry_policy
    for bad in (ConfigError("x"), BadInputError("x"), ParamValidationError("x")):
        assert policy.evaluate(bad, 1, 3).action is RetryAction.FAIL
    for flaky in (OSError("disk"), TimeoutError(), RuntimeError("pod evicted")):
        assert policy.evaluate(flaky, 1, 3).action is RetryAction.DEFAULT


def test_deadline_only_when_configured(bag) -> None:
    from airflow.sdk import DeadlineReference

    dags, _ = bag
    assert not dags.dags["retrain_manual"].deadline
    (alert,) = dags.dags["retrain_both"].deadline
    assert alert.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert alert.interval == timedelta(minutes=45)
    assert alert.callback.path == "operators.scheduling.run_overdue"


def test_serialized_dag_keeps_schedule_deadline_and_policy(bag) -> None:
    """What the scheduler and API server see (the serialized DAG), not just the Python object."""
    from airflow.serialization.serialized_objects import DagSerialization

    dags, _ = bag
    dag = dags.dags["retrain_both"]
    data = DagSerialization.to_dict(dag)
    restored = DagSerialization.from_dict(data)
    assert type(restored.timetable).__name__ == "AssetOrTimeSchedule"
    assert restored.timetable.summary  # the cron part survives
    assert "data_both" in str(data["dag"]["timetable"]) or "file:///data/digits" in str(data)
    (deadline,) = restored.deadline  # kept serialized until the scheduler creates the run's deadline
    assert deadline["interval"]["__data__"] == 45 * 60
    assert deadline["callback"]["__data__"]["path"] == "operators.scheduling.run_overdue"
    train = restored.get_task("train")
    assert train.has_retry_policy
    assert train.execution_timeout == timedelta(minutes=90)
    assert restored.params["epochs"] == 10
    assert restored.params.get_param("epochs").schema["section"] == "Training"


def test_deadline_callback_logs_and_records_the_miss(
    bag, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from operators.scheduling import run_overdue

    _, folder = bag
    monkeypatch.setenv("SLIPWAY_PIPELINES_DIR", str(folder))
    context = {"dag_run": {"run_id": "manual__2026-05-01"}, "deadline": {"id": "d1"}}
    message = asyncio.run(run_overdue(pipeline="both", minutes=45, context=context))
    assert message == "retrain_both run manual__2026-05-01 is not finished 45 minutes after it was queued"
    text = (folder / "metrics" / "slipway_both_deadline.prom").read_text()
    assert 'slipway_run_deadline_missed_timestamp_seconds{pipeline="both"}' in text


def test_bad_asset_uri_is_a_config_error() -> None:
    from slipway.config import ConfigError, parse_config

    raw = {
        "name": "x",
        "model_name": "x",
        "store_url": "file:///tmp/x",
        "data": {"source": {"kind": "digits"}, "input_shape": [8, 8], "num_classes": 10},
    }
    for uri, words in (("just words", "must be a URI"), ("airflow://x", "reserved")):
        with pytest.raises(ConfigError, match=words):
            parse_config({**raw, "orchestration": {"data_asset": uri}})
    with pytest.raises(ConfigError, match=r"orchestration\.step_timeout_minutes"):
        parse_config({**raw, "orchestration": {"step_timeout_minutes": {"trian": 5}}})
