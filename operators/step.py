"""``SlipwayStepOperator``: run one heavy step through the configured launcher.

The operator resolves the run's config overrides from the Params form, hands the step to the
launcher (local subprocess or Kubernetes), and maps the exit code: bad input fails the task at
once without retries (retrying cannot fix data), anything else is retried as infrastructure
trouble. The step's ``result.json`` becomes the task's XCom.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.sdk import BaseOperator, BaseOperatorLink
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from operators.launchers import StepLauncher, StepRequest, launcher_for
from operators.links import DataDocsLink, EvaluationReportLink, TrainedModelLink
from operators.params import overrides_from_params, run_request_problems
from slipway.config import ConfigError, PipelineConfig, load_config
from slipway.errors import EXIT_BAD_INPUT, EXIT_OK


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
        dag_run = context.get("dag_run")
        problems = run_request_problems(
            context["params"],
            getattr(dag_run, "conf", None),
            known=context["dag"].params.keys(),
            partition=self.partition,
        )
        if problems:
            raise AirflowFailException(f"step {self.step} not started (no retry): " + "; ".join(problems))
        overrides = overrides_from_params(context["params"])
        try:
            config = load_config(self.config_path).with_overrides(overrides)  # fail here, not in the pod
        except ConfigError as exc:
            raise AirflowFailException(f"step {self.step} not started (no retry): {exc}") from None
        request = StepRequest(
            step=self.step,
            config_path=self.config_path,
            run_id=context["run_id"],
            partition=self.partition or None,
            overrides=overrides,
        )
        self._launcher = launcher_for(config.launcher)
        outcome = self._launcher.launch(request, self.log)
        if outcome.exit_code == EXIT_OK and outcome.result is not None:
            return outcome.result
        reason = "\n".join(outcome.error_lines)
        self._push_partial_result(config, context)
        if outcome.exit_code == EXIT_BAD_INPUT:
            raise AirflowFailException(f"step {self.step} rejected its input (no retry):\n{reason}")
        raise AirflowException(f"step {self.step} failed with exit code {outcome.exit_code}:\n{reason}")

    def _push_partial_result(self, config: PipelineConfig, context: Any) -> None:
        """A failed step may still have written its report (validate does): keep its links working."""
        from slipway.steps.context import RunContext

        try:
            result = RunContext.create(config, context["run_id"]).read_result(self.step)
        except Exception:  # nothing was written, or the store itself failed: no links then
            return
        context["ti"].xcom_push(key="return_value", value=result)

    def on_kill(self) -> None:
        if self._launcher is not None:
            self._launcher.cancel()
