"""When and how a retraining DAG runs, from the pipeline config (``schedule`` + ``orchestration``).

* ``schedule_for``: a cron schedule, an Asset (new data), both (``AssetOrTimeSchedule``: whichever
  comes first starts a run), or none (triggered from the UI / REST only).
* ``default_args_for``: retries with exponential backoff, per-task timeouts, and a retry policy
  that fails bad input at once (retries are for infrastructure trouble; steps report bad input
  with exit code 65, and operators raise ``AirflowFailException`` for it already - the policy is
  the safety net for a ``ConfigError`` or a rejected Param raised anywhere else).
* ``deadline_for``: a ``DeadlineAlert`` when a run is still unfinished ``run_deadline_minutes``
  after it was queued; the callback (``run_overdue``) runs on the triggerer, logs, and records
  ``slipway_run_deadline_missed_timestamp_seconds`` so an alert rule can page someone.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable

# Exported by airflow.sdk at run time too, but only these paths are visible to a type checker.
from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference
from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy, RetryAction, RetryRule

from slipway.config import PipelineConfig

log = logging.getLogger(__name__)

# Exceptions no retry can fix. Dotted paths: the policy is serialized with the DAG.
BAD_INPUT_EXCEPTIONS = [
    "slipway.config.ConfigError",
    "slipway.errors.BadInputError",
    "airflow.sdk.exceptions.ParamValidationError",
]


def data_asset(config: PipelineConfig) -> Asset | None:
    """The Asset whose events mean "new data for this pipeline", if the pipeline has one."""
    uri = config.orchestration.data_asset
    return Asset(name=f"{config.name}_data", uri=uri) if uri else None


def schedule_for(config: PipelineConfig) -> Any:
    """Cron, new data, either of the two, or nothing (manual runs only)."""
    asset = data_asset(config)
    if asset is None:
        return config.schedule
    if config.schedule is None:
        return [asset]
    return AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(config.schedule, timezone="UTC"),
        assets=[asset],
    )


def bad_input_retry_policy() -> ExceptionRetryPolicy:
    return ExceptionRetryPolicy(
        rules=[
            RetryRule(
                exception=list(BAD_INPUT_EXCEPTIONS),
                action=RetryAction.FAIL,
                reason="bad input: retrying cannot fix it",
            )
        ]
    )


def default_args_for(config: PipelineConfig) -> dict[str, Any]:
    orchestration = config.orchestration
    return {
        "owner": config.owner,
        "retries": orchestration.retries,
        "retry_delay": timedelta(seconds=orchestration.retry_delay_seconds),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(seconds=orchestration.max_retry_delay_seconds),
        "execution_timeout": timedelta(minutes=orchestration.task_timeout_minutes),
        "retry_policy": bad_input_retry_policy(),
    }


def task_timeout(config: PipelineConfig, task_id: str) -> timedelta:
    """The task's own timeout when the config sets one (``train`` is long), else the default."""
    orchestration = config.orchestration
    per_task = {str(step): minutes for step, minutes in orchestration.step_timeout_minutes.items()}
    return timedelta(minutes=per_task.get(task_id, orchestration.task_timeout_minutes))


def deadline_for(config: PipelineConfig) -> DeadlineAlert | None:
    minutes = config.orchestration.run_deadline_minutes
    if minutes is None:
        return None
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=minutes),
        callback=AsyncCallback(
            "operators.scheduling.run_overdue", kwargs={"pipeline": config.name, "minutes": minutes}
        ),
        name=f"retrain_{config.name} overdue",
    )


async def run_overdue(pipeline: str, minutes: float, context: dict[str, Any] | None = None) -> str:
    """Deadline callback (on the triggerer): say which run is late, and export the miss as a metric."""
    run_id = ((context or {}).get("dag_run") or {}).get("run_id", "?")
    message = f"retrain_{pipeline} run {run_id} is not finished {minutes:g} minutes after it was queued"
    log.warning(message)
    await asyncio.to_thread(_record_miss, pipeline)
    return message


def _record_miss(pipeline: str) -> None:
    import time

    from operators.pipelines import pipeline_by_name
    from slipway import metrics

    config = pipeline_by_name(pipeline)
    if config is None:
        return
    batch = metrics.MetricsBatch(pipeline=pipeline, step="deadline")
    batch.set("slipway_run_deadline_missed_timestamp_seconds", time.time())
    metrics.emit(batch, config.metrics)
