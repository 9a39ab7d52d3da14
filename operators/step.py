"""``SlipwayStepOperator``: run one heavy step through the configured launcher.

The operator resolves the run's config (file + overrides from the Params form), hands the step
to the local launcher with the config by value, and maps the exit code: bad input fails the task
at once without retries (retrying cannot fix data), anything else is retried as infrastructure
trouble. The step's ``result.json``, read from the store, becomes the task's XCom. The
Kubernetes kinds use the provider's operators instead (``operators/launchers/kubernetes_*.py``,
chosen by ``operators.launchers.step_operator``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.sdk import BaseOperator, BaseOperatorLink
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from operators.launchers.base import StepLauncher, StepRequest, read_step_result
from operators.launchers.factory import launcher_for
from operators.links import DataDocsLink, EvaluationReportLink, TrainedModelLink
from operators.params import overrides_from_params
from slipway.config import ConfigError, LocalLauncherConfig, PipelineConfig, load_config
from slipway.errors import EXIT_BAD_INPUT, EXIT_OK


def resolve_step_config(config_path: str, context: Any, step: str) -> PipelineConfig:
    """The run's config: the file plus the Params form's overrides; bad ones fail without retry."""
    overrides = overrides_from_params(context["params"])
    try:
        return load_config(config_path).with_overrides(overrides)  # fail here, not in the pod
    except ConfigError as exc:
        raise AirflowFailException(f"step {step} not started (no retry): {exc}") from None


def step_result_or_fail(config: PipelineConfig, run_id: str, step: str) -> dict[str, Any]:
    """The result a finished step left in the store; a success without one is a broken step."""
    result = read_step_result(config, run_id, step)
    if result is None:
        raise AirflowException(f"step {step} finished but left no result.json in the store for run {run_id}")
    return result


class SlipwayStepOperator(BaseOperator):
    template_fields = ("partition",)
    ui_color = "#d6eaf8"
    # Each step's button opens what that step produced (set per instance in __init__).
    LINKS_BY_STEP: ClassVar[dict[str, tuple[BaseOperatorLink, ...]]] = {
        "validate": (DataDocsLink(),),
        "train": (TrainedModelLink(),),
        "evaluate": (EvaluationReportLink(),),
    }

    def __init__(self, *, step: str, config_path: str, partition: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.step = step
        self.config_path = config_path
        self.partition = partition
        self.operator_extra_links = self.LINKS_BY_STEP.get(step, ())
        self._launcher: StepLauncher | None = None

    def execute(self, context: Any) -> dict[str, Any]:
        config = resolve_step_config(self.config_path, context, self.step)
        if not isinstance(config.launcher, LocalLauncherConfig):
            raise AirflowFailException(
                f"{type(self).__name__} runs local steps; launcher kind {config.launcher.kind!r} uses"
                " the operator chosen by operators.launchers.step_operator (rebuild the DAG)"
            )
        request = StepRequest(
            step=self.step, config=config, run_id=context["run_id"], partition=self.partition or None
        )
        self._launcher = launcher_for(config.launcher)
        outcome = self._launcher.launch(request, self.log)
        if outcome.exit_code == EXIT_OK:
            return step_result_or_fail(config, context["run_id"], self.step)
        reason = "\n".join(outcome.error_lines)
        self._push_partial_result(config, context)
        if outcome.exit_code == EXIT_BAD_INPUT:
            raise AirflowFailException(f"step {self.step} rejected its input (no retry):\n{reason}")
        raise AirflowException(f"step {self.step} failed with exit code {outcome.exit_code}:\n{reason}")

    def _push_partial_result(self, config: PipelineConfig, context: Any) -> None:
        """A failed step may still have written its report (validate does): keep its links working."""
        push_partial_result(config, context, self.step)


def push_partial_result(config: PipelineConfig, context: Any, step: str) -> None:
    try:
        result = read_step_result(config, context["run_id"], step)
    except Exception:  # the store itself failed: no links then
        return
    if result is not None:
        context["ti"].xcom_push(key="return_value", value=result)

    def on_kill(self) -> None:
        if self._launcher is not None:
            self._launcher.cancel()
