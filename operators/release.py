"""Gate, register and promote operators: thin wrappers over ``slipway.release``.

The gate never fails the run for a rejected candidate: a rejection is an outcome, so the gate task
succeeds, logs the reasons with their numbers, and skips everything downstream (register,
promote) the way ``ShortCircuitOperator`` does.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator, SkipMixin
from airflow.sdk.exceptions import AirflowFailException

from operators.links import EvaluationReportLink, ModelLink
from slipway import metrics
from slipway.config import PipelineConfig, load_config


class _ReleaseOperator(BaseOperator):
    """Shared plumbing: config, run context, health metrics of the task."""

    ui_color = "#d5f5e3"
    step_name = ""

    def __init__(self, *, config_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config_path = config_path

    def execute(self, context: Any) -> Any:
        from slipway.steps.context import RunContext

        config: PipelineConfig = load_config(self.config_path)
        ctx = RunContext.create(config, context["run_id"])
        with metrics.reporting_step(config.name, self.step_name, config.metrics) as batch:
            result = self.decide(ctx, batch, context)
        self.after_decision(result, context)
        return result

    def decide(self, ctx: Any, batch: metrics.MetricsBatch, context: Any) -> Any:
        raise NotImplementedError

    def after_decision(self, result: Any, context: Any) -> None:
        """Hook run once the decision is recorded (and its metrics emitted)."""


class SlipwayGateOperator(_ReleaseOperator, SkipMixin):
    step_name = "gate"
    operator_extra_links = (EvaluationReportLink(),)

    def decide(self, ctx: Any, batch: metrics.MetricsBatch, context: Any) -> dict[str, Any]:
        from slipway.evaluation.gate import GateOverrideError
        from slipway.release import final_report_key, judge_candidate

        params = context["params"]
        force_reason = None
        if params.get("force_deploy"):
            force_reason = (params.get("force_reason") or "").strip()
            if not force_reason:
                raise AirflowFailException(
                    "force_deploy is set but force_reason is empty: "
                    "a forced deployment requires a written reason"
                )
        actor = _actor(context)
        try:
            blessing = judge_candidate(ctx, batch, force_reason=force_reason, actor=actor)
        except GateOverrideError as exc:
            raise AirflowFailException(str(exc)) from None
        for line in blessing.reasons:
            self.log.info("gate: %s", line)
        report_key = final_report_key(ctx)
        if not ctx.store.exists(report_key):
            return blessing.to_dict()
        return {**blessing.to_dict(), "report_key": report_key, "report_uri": ctx.store.uri(report_key)}

    def after_decision(self, result: dict[str, Any], context: Any) -> None:
        if result["blessed"]:
            self.log.info("gate: candidate BLESSED%s", " (forced)" if result.get("forced") else "")
            return
        self.log.warning("gate: candidate REJECTED; deployment tasks are skipped, the champion is untouched")
        downstream = [t for t in context["task"].get_flat_relatives(upstream=False) if not t.is_teardown]
        if downstream:
            # skip() ends the task (it raises DownstreamTasksSkipped), so the Blessing is pushed
            # first: it is the task's result and what the report link reads.
            context["ti"].xcom_push(key="return_value", value=result)
            self.skip(ti=context["ti"], tasks=downstream)


class SlipwayRegisterOperator(_ReleaseOperator):
    step_name = "register"
    operator_extra_links = (EvaluationReportLink(), ModelLink())

    def decide(self, ctx: Any, batch: metrics.MetricsBatch, context: Any) -> dict[str, Any]:
        from slipway.release import register_candidate

        result = register_candidate(ctx, batch, actor=_actor(context))
        self.log.info(
            "registered %s version %s (%s)", result["model_name"], result["version"], result["model_uri"]
        )
        return result


class SlipwayPromoteOperator(_ReleaseOperator):
    step_name = "promote"

    def __init__(self, *, register_task_id: str = "register", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.register_task_id = register_task_id

    def decide(self, ctx: Any, batch: metrics.MetricsBatch, context: Any) -> dict[str, Any]:
        from slipway.release import promote_candidate

        registered = context["ti"].xcom_pull(task_ids=self.register_task_id)
        _check_canary(ctx)
        result = promote_candidate(ctx, batch, int(registered["version"]), actor=_actor(context))
        self.log.info(
            "champion of %s: v%s (was %s)",
            result["model_name"],
            result["champion"],
            result["previous_champion"],
        )
        return result


def _check_canary(ctx: Any) -> None:
    """The champion moves only after this run's canary rollout promoted (or was skipped)."""
    from slipway.store import ArtifactNotFound

    try:
        state = ctx.store.get_json(ctx.key("canary", "rollout.json"))
    except ArtifactNotFound:
        return  # a DAG without a canary task
    if state["status"] not in ("promoted", "skipped"):
        raise AirflowFailException(
            f"not promoting: the canary rollout is {state['status']} ({state['reason']}); champion untouched"
        )


def _actor(context: Any) -> str:
    """Who triggered the run, for the audit trail: the UI/REST user if any, else the scheduler."""
    dag_run = context.get("dag_run")
    user = getattr(dag_run, "triggering_user_name", None) if dag_run is not None else None
    return f"airflow:{user}" if user else "airflow:scheduler"
