"""Operator extra links: buttons on the task page that open what the step produced.

Airflow 3 computes a link on the worker when the task finishes (``get_link`` with the running
task instance) and stores it as an XCom. The links point at the artifacts plugin
(``/slipway/...``), which reads the store, so the same button works for a ``file://`` store on a
laptop and an ``s3://`` bucket on a cluster. Every task has a *Run page* button (the run's whole
story); the train task's *Training curves* opens that page at its curves. URLs come from
``operators/urls.py``: this module is imported while DAGs are parsed and never imports the plugin.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink

from operators.urls import artifact_url, model_page_url, run_page_url
from slipway.config import load_config


class _ResultLink(BaseOperatorLink):
    result_field: str = ""
    suffix: str = ""

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        try:
            result = ti_key.xcom_pull(task_ids=operator.task_id, key="return_value")
        except Exception:
            return ""
        key = self._field(operator, result)
        if not key:
            return ""
        pipeline = load_config(operator.config_path).name
        return artifact_url(pipeline, f"{key}{self.suffix}")

    def _field(self, operator: Any, result: Any) -> str | None:
        """The key field of the task's result: a step's result is parsed by its model first."""
        if not isinstance(result, dict):
            return None
        step = getattr(operator, "step", None)
        if step is None:  # gate / register: their own small dicts
            value = result.get(self.result_field)
        else:
            from slipway.results import parse_result

            try:
                value = getattr(parse_result(step, result), self.result_field, None)
            except Exception:  # a result of another contract: no link rather than a broken page
                return None
        return value if isinstance(value, str) else None


class DataDocsLink(_ResultLink):
    name = "Data Docs"
    result_field = "data_docs_key"


class EvaluationReportLink(_ResultLink):
    name = "Evaluation report"
    result_field = "report_key"


class TuningReportLink(_ResultLink):
    """The sweep's report: trial table, optimisation history, parameter importances."""

    name = "Tuning report"
    result_field = "report_key"


class ModelLink(_ResultLink):
    """The model's metadata (dataset hash, config, curves, metrics); weights are not served."""

    name = "Model metadata"
    result_field = "model_key"


class RunPageLink(BaseOperatorLink):
    """The run page: trigger, data, validation, curves, evaluation, gate, registry, rollout."""

    name = "Run page"
    anchor = ""

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        run_id = getattr(ti_key, "run_id", None)
        if not run_id:
            return ""
        return run_page_url(load_config(operator.config_path).name, run_id, self.anchor)


class TrainingCurvesLink(RunPageLink):
    """The train task's button: loss and accuracy per epoch as a plot, on the run page."""

    name = "Training curves"
    anchor = "training"


class ModelPageLink(BaseOperatorLink):
    """The model's versions, alias history and what serves now."""

    name = "Model page"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return model_page_url(load_config(operator.config_path).name)


def links_for_step(step: str) -> tuple[BaseOperatorLink, ...]:
    """The buttons of a step's task, whichever launcher runs it (process, pod or Job)."""
    return _LINKS_BY_STEP.get(step, (RunPageLink(),))


_LINKS_BY_STEP: dict[str, tuple[BaseOperatorLink, ...]] = {
    "ingest": (RunPageLink(),),
    "validate": (DataDocsLink(), RunPageLink()),
    "train": (TrainingCurvesLink(), RunPageLink()),
    "evaluate": (EvaluationReportLink(), RunPageLink()),
    "tune-select": (TuningReportLink(), RunPageLink()),
}
