"""``SlipwayCanaryOperator``: the canary rollout between register and promote, deferrable.

Each analysis interval is waited out in the triggerer (``DateTimeTrigger``: serializable, and its
``run()`` only waits for a moment, so running it twice is harmless), holding no worker slot. Every
resume rebuilds the rollout from the store (``slipway.rollout.controller``): a task restarted
mid-rollout continues at the same step. A rollback is an outcome like a gate rejection: the task
succeeds, logs why with the numbers, and skips promote, so the champion alias and the drift
reference stay where they are. The ``skip_canary`` Param (with a reason) or ``rollout.enabled:
false`` skips the rollout, recorded with the reason, and promote runs as before. Failures follow
the fail-fast rule of ``operators/errors.py``: bad Params, a missing registered version or rollout
record, an invalid config fail at once; anything else (a router or server down) is retried, and the
retry resumes the rollout.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from airflow.sdk import BaseOperator, SkipMixin

from operators.errors import airflow_errors
from operators.links import RunPageLink
from slipway.config import PipelineConfig, load_config
from slipway.errors import BadInputError


def rollout_key(config: PipelineConfig, run_id: str) -> str:
    from slipway.steps.context import RunContext

    return RunContext.create(config, run_id).layout.rollout_state


class SlipwayCanaryOperator(BaseOperator, SkipMixin):
    ui_color = "#fdebd0"
    operator_extra_links = (RunPageLink(),)  # the run page shows the rollout's steps and decisions

    def __init__(self, *, config_path: str, register_task_id: str = "register", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config_path = config_path
        self.register_task_id = register_task_id

    def _rollout(self, config: PipelineConfig, context: Any) -> Any:
        from slipway.rollout.controller import rollout_for

        return rollout_for(config, rollout_key(config, context["run_id"]))

    def execute(self, context: Any) -> dict[str, Any]:
        with airflow_errors("canary"):
            return self._start(context)

    def resume(self, context: Any, event: Any = None) -> dict[str, Any]:
        with airflow_errors("canary"):
            return self._resume(context)

    def _start(self, context: Any) -> dict[str, Any]:
        from slipway.registry import ModelRegistry
        from slipway.rollout.controller import Rollout

        config = load_config(self.config_path)
        registered = context["ti"].xcom_pull(task_ids=self.register_task_id)
        if not registered or "version" not in registered:
            raise BadInputError(f"no registered version from task {self.register_task_id!r}")
        version = int(registered["version"])
        key = rollout_key(config, context["run_id"])
        params = context.get("params") or {}
        skip_reason = None
        if params.get("skip_canary"):
            skip_reason = (params.get("skip_canary_reason") or "").strip()
            if not skip_reason:
                raise BadInputError("skip_canary is set but skip_canary_reason is empty: write why")
        elif not config.rollout.enabled:
            skip_reason = "rollout.enabled is false in the pipeline config"
        if skip_reason:
            from slipway.store import open_store

            state = Rollout.skip(
                open_store(config.store_url),
                key,
                model=config.model_name,
                candidate=version,
                reason=skip_reason,
            )
            self.log.warning("canary: %s", state["reason"])
            _report(config, state, seen=0)
            return _result(state, key)
        rollout = self._rollout(config, context)
        stable = ModelRegistry(rollout.store, config.model_name).get_alias("champion")
        state = rollout.start(version, stable)
        return self._continue(rollout, state, context)

    def _resume(self, context: Any) -> dict[str, Any]:
        config = load_config(self.config_path)
        rollout = self._rollout(config, context)
        state = rollout.load()
        if state is None:
            raise BadInputError(f"the rollout record {rollout.key} is gone: cannot resume")
        return self._continue(rollout, state, context)

    def _continue(self, rollout: Any, state: dict[str, Any], context: Any) -> dict[str, Any]:
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        from slipway.rollout.controller import RUNNING, summary

        seen = len(state["analyses"])
        state = rollout.analyse(state)
        _report(load_config(self.config_path), state, seen)
        for line in summary(state)[seen:-1]:
            self.log.info("canary: %s", line)
        if state["status"] == RUNNING:
            moment = datetime.datetime.fromtimestamp(state["due"], tz=datetime.UTC)
            self.defer(trigger=DateTimeTrigger(moment=moment), method_name="resume")
        self.log.info("canary: %s", summary(state)[-1])
        result = _result(state, rollout.key)
        if state["status"] == "rolled_back":
            downstream = [t for t in context["task"].get_flat_relatives(upstream=False) if not t.is_teardown]
            if downstream:
                context["ti"].xcom_push(key="return_value", value=result)
                self.skip(ti=context["ti"], tasks=downstream)
        return result


def _report(config: PipelineConfig, state: dict[str, Any], seen: int) -> None:
    """Canary weight and decision totals for Prometheus; a metrics outage never fails the rollout."""
    from slipway.rollout.reporting import report_rollout
    from slipway.store import open_store

    try:
        report_rollout(config, open_store(config.store_url), state, seen)
    except Exception:  # metrics are a side channel, as in slipway.metrics.emit
        logging.getLogger(__name__).exception("could not report the rollout's metrics")


def _result(state: dict[str, Any], key: str) -> dict[str, Any]:
    return {
        "status": state["status"],
        "reason": state["reason"],
        "candidate": state["candidate"],
        "analyses": len(state["analyses"]),
        "rollout_key": key,
    }
