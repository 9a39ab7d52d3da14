"""``SlipwayStepOperator``: run one heavy step through the local launcher.

The operator resolves the run's config (file + overrides from the Params form), hands the step
to the launcher with the config by value, and maps the exit code with ``operators.errors``: bad
input fails the task at once without retries (retrying cannot fix data), anything else is retried
as infrastructure trouble. The step's ``result.json``, read from the store and parsed by its model
(``slipway.results``), becomes the task's XCom. The Kubernetes kinds use the provider's operators
instead (``operators/launchers/kubernetes_*.py``, chosen by ``operators.launchers.step_operator``),
which share the helpers below.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from operators.errors import airflow_errors, for_exit_code
from operators.launchers.base import StepLauncher, StepRequest, read_step_result
from operators.launchers.factory import launcher_for
from operators.links import links_for_step
from operators.params import overrides_from_params, run_request_problems
from slipway.config import LocalLauncherConfig, PipelineConfig, load_config
from slipway.errors import EXIT_OK, BadInputError
from slipway.layout import result_folder
from slipway.results import parse_result


def resolve_step_config(
    config_path: str, context: Any, step: str, partition: str | None = None
) -> PipelineConfig:
    """The run's config: the file plus the Params form's overrides; a bad request (unknown conf
    field, forced deployment without a reason, a partition name that climbs out of the source)
    or a bad override fails without retry, before anything is launched."""
    with airflow_errors(f"step {step} not started"):  # fail here, not in the pod
        dag = context.get("dag")
        if dag is not None:
            problems = run_request_problems(
                context["params"],
                getattr(context.get("dag_run"), "conf", None),
                known=dag.params.keys(),
                partition=partition,
            )
            if problems:
                raise BadInputError("; ".join(problems))
        overrides = overrides_from_params(context["params"])
        return load_config(config_path).with_overrides(overrides)


def step_options(step_args: list[str]) -> dict[str, str]:
    """``["--trial", "3"]`` -> ``{"trial": "3"}``: the options that tell a step's runs apart."""
    return {
        name.removeprefix("--"): value for name, value in zip(step_args[::2], step_args[1::2], strict=False)
    }


def step_result_or_fail(
    config: PipelineConfig, run_id: str, step: str, options: dict[str, str] | None = None
) -> dict[str, Any]:
    """The result a finished step left in the store, parsed by its model.

    A success without a result is a broken step or store (retried); a result that breaks its
    contract is bad input (not retried).
    """
    raw = read_step_result(config, run_id, result_folder(step, options))
    if raw is None:
        raise AirflowException(f"step {step} finished but left no result.json in the store for run {run_id}")
    with airflow_errors(f"step {step}"):
        return parse_result(step, raw, where=f"the {step} step's result.json").dump()


def push_partial_result(config: PipelineConfig, context: Any, step: str) -> None:
    """A failed step may still have written its report (validate does): keep its links working."""
    try:
        raw = read_step_result(config, context["run_id"], step)
        result = parse_result(step, raw).dump() if raw is not None else None
    except Exception:  # the store failed, or a half-written result: no links then
        return
    if result is not None:
        context["ti"].xcom_push(key="return_value", value=result)


class SlipwayStepOperator(BaseOperator):
    template_fields = ("partition",)
    ui_color = "#d6eaf8"

    def __init__(
        self,
        *,
        step: str,
        config_path: str,
        partition: str | None = None,
        step_args: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.step = step
        # Step-specific options; mappable (a sweep expands one task per ["--trial", "N"]).
        self.step_args = list(step_args or [])
        self.config_path = config_path
        self.partition = partition
        self.operator_extra_links = links_for_step(step)  # buttons opening what the step produced
        self._launcher: StepLauncher | None = None

    def execute(self, context: Any) -> dict[str, Any]:
        what = f"step {self.step}"
        config = resolve_step_config(self.config_path, context, self.step, self.partition)
        with airflow_errors(what):
            if not isinstance(config.launcher, LocalLauncherConfig):
                raise BadInputError(
                    f"{type(self).__name__} runs local steps; launcher kind {config.launcher.kind!r} uses"
                    " the operator chosen by operators.launchers.step_operator (rebuild the DAG)"
                )
            self._launcher = launcher_for(config.launcher)
        request = StepRequest(
            step=self.step,
            config=config,
            run_id=context["run_id"],
            partition=self.partition or None,
            extra_args=tuple(str(a) for a in self.step_args),
        )
        outcome = self._launcher.launch(request, self.log)
        if outcome.exit_code == EXIT_OK:
            return step_result_or_fail(config, context["run_id"], self.step, step_options(self.step_args))
        push_partial_result(config, context, self.step)
        raise for_exit_code(outcome.exit_code, what, "\n".join(outcome.error_lines))

    def on_kill(self) -> None:
        if self._launcher is not None:
            self._launcher.cancel()
