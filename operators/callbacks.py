"""Pipeline health from Airflow's side: task and DAG-run callbacks that push Slipway metrics.

The steps report their own figures (validation, training, evaluation) from inside the step. What
only Airflow knows is reported here, in the success *and* failure callbacks, so a step that was
killed, timed out or never started its subprocess still shows up: per task, its outcome and
duration (group ``pipeline``/``<task_id>``); per run, its start, end, duration, outcome and the
last successful run (group ``pipeline``/``run``).

Every callback swallows its own errors after logging them: monitoring must never change the
outcome of a retraining run.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from slipway import metrics
from slipway.config import MetricsConfig, load_config

log = logging.getLogger(__name__)


def schedule_interval_seconds(schedule: str | None, now: datetime | None = None) -> float | None:
    """Seconds between the next two scheduled runs of a cron schedule; None when unscheduled."""
    if not schedule:
        return None
    from croniter import croniter

    try:
        it = croniter(schedule, now or datetime.now())
        first = it.get_next(float)
        return float(it.get_next(float) - first)
    except (ValueError, KeyError):  # not a cron expression (an Asset schedule, a timedelta): no interval
        return None


def _timestamp(value: Any) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


class PipelineMetricsCallbacks:
    """The callbacks of one pipeline's DAG; holds only the config path, so it pickles and parses cheaply."""

    def __init__(self, config_path: str) -> None:
        self.config_path = config_path

    def _target(self) -> tuple[str, str | None, MetricsConfig]:
        config = load_config(self.config_path)
        return config.name, config.schedule, config.metrics

    # ---- task callbacks
    def task_started(self, context: Any) -> None:
        """First task of the run: the run has started (the DAG has no run-start callback)."""
        try:
            task = context["task"]
            if task.upstream_task_ids:
                return
            name, schedule, config = self._target()
            batch = metrics.MetricsBatch(pipeline=name, step=metrics.RUN_STEP)
            started = _timestamp(getattr(context.get("dag_run"), "start_date", None)) or time.time()
            metrics.run_started(batch, started_at=started, interval_s=schedule_interval_seconds(schedule))
            metrics.emit(batch, config)
        except Exception as exc:
            log.warning("could not report the start of the run: %s", exc)

    def task_succeeded(self, context: Any) -> None:
        self._task_finished(context, succeeded=True)

    def task_failed(self, context: Any) -> None:
        """Final failure and each failed try alike: the step's last run did not succeed."""
        self._task_finished(context, succeeded=False)

    def _task_finished(self, context: Any, *, succeeded: bool) -> None:
        try:
            name, _, config = self._target()
            ti = context["ti"]
            now = time.time()
            started = _timestamp(getattr(ti, "start_date", None)) or now
            batch = metrics.MetricsBatch(pipeline=name, step=ti.task_id)
            metrics.step_outcome(batch, succeeded=succeeded, duration_s=max(0.0, now - started), now=now)
            metrics.emit(batch, config)
        except Exception as exc:
            log.warning("could not report the outcome of the task: %s", exc)

    # ---- DAG-run callbacks
    def run_succeeded(self, context: Any) -> None:
        self._run_finished(context, succeeded=True)

    def run_failed(self, context: Any) -> None:
        self._run_finished(context, succeeded=False)

    def _run_finished(self, context: Any, *, succeeded: bool) -> None:
        try:
            name, _, config = self._target()
            now = time.time()
            started = _timestamp(getattr(context.get("dag_run"), "start_date", None)) or now
            batch = metrics.MetricsBatch(pipeline=name, step=metrics.RUN_STEP)
            metrics.run_finished(batch, succeeded=succeeded, started_at=started, now=now)
            metrics.emit(batch, config)
        except Exception as exc:
            log.warning("could not report the end of the run: %s", exc)

    def task_callbacks(self) -> dict[str, Any]:
        """For the DAG's ``default_args``."""
        return {
            "on_execute_callback": self.task_started,
            "on_success_callback": self.task_succeeded,
            "on_failure_callback": self.task_failed,
            "on_retry_callback": self.task_failed,
        }

    def dag_callbacks(self) -> dict[str, Any]:
        """For the ``DAG(...)`` keyword arguments."""
        return {"on_success_callback": self.run_succeeded, "on_failure_callback": self.run_failed}
