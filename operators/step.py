"""``SlipwayStepOperator``: run one heavy step through the configured launcher.

The operator resolves the run's config overrides from the Params form, hands the step to the
launcher (local subprocess or Kubernetes), and maps the exit code with ``operators.errors``: bad
input fails the task at once without retries (retrying cannot fix data), anything else is retried
as infrastructure trouble. The step's result, parsed by its model (``slipway.results``), becomes
the task's XCom.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.sdk import BaseOperator, BaseOperatorLink

from operators.errors import airflow_errors, for_exit_code
from operators.launchers import StepLauncher, StepRequest, launcher_for
from operators.links import (
    DataDocsLink,
    EvaluationReportLink,
    RunPageLink,
    TrainingCurvesLink,
    TuningReportLink,
)
from operators.params import overrides_from_params
from slipway.config import PipelineConfig, load_config
from slipway.errors import EXIT_OK
from slipway.results import model_for, parse_result


class SlipwayStepOperator(BaseOperator):
    template_fields = ("partition",)
    ui_color = "#d6eaf8"
    # Each step's button opens what that step produced (set per instance in __init__).
    LINKS_BY_STEP: ClassVar[dict[str, tuple[BaseOperatorLink, ...]]] = {
        "ingest": (RunPageLink(),),
        "validate": (DataDocsLink(), RunPageLink()),
        "train": (TrainingCurvesLink(), RunPageLink()),
        "evaluate": (EvaluationReportLink(), RunPageLink()),
        "tune-select": (TuningReportLink(), RunPageLink()),
    }

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
        self.operator_extra_links = self.LINKS_BY_STEP.get(step, (RunPageLink(),))
        self._launcher: StepLauncher | None = None

    def execute(self, context: Any) -> dict[str, Any]:
        what = f"step {self.step}"
        with airflow_errors(what):
            overrides = overrides_from_params(context["params"])
            config = load_config(self.config_path).with_overrides(overrides)  # fail here, not in the pod
        request = StepRequest(
            step=self.step,
            config_path=self.config_path,
            run_id=context["run_id"],
            partition=self.partition or None,
            overrides=overrides,
            extra_args=tuple(str(a) for a in self.step_args),
        )
        with airflow_errors(what):
            self._launcher = launcher_for(config.launcher)
        outcome = self._launcher.launch(request, self.log)
        if outcome.exit_code == EXIT_OK and outcome.result is not None:
            with airflow_errors(what):  # a result that breaks its contract is not retried
                return parse_result(self.step, outcome.result, where=f"the {self.step} step's output").dump()
        reason = "\n".join(outcome.error_lines)
        self._push_partial_result(config, context)
        if outcome.exit_code == EXIT_OK:
            reason = f"it exited 0 but reported no result\n{reason}"
        raise for_exit_code(outcome.exit_code, what, reason)

    def _push_partial_result(self, config: PipelineConfig, context: Any) -> None:
        """A failed step may still have written its report (validate does): keep its links working."""
        from slipway.steps.context import RunContext

        try:
            result = RunContext.create(config, context["run_id"]).read_result(self.step, model_for(self.step))
        except Exception:  # nothing was written, or the store itself failed: no links then
            return
        context["ti"].xcom_push(key="return_value", value=result.dump())

    def on_kill(self) -> None:
        if self._launcher is not None:
            self._launcher.cancel()
