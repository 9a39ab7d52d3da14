"""Operator extra links: buttons on the task page that open what the step produced.

Airflow 3 computes a link on the worker when the task finishes (``get_link`` with the running
task instance) and stores it as an XCom. The link points at the artifacts plugin
(``/slipway/artifacts/<pipeline>/<key>``), which streams the object from the store, so the same
button works for a ``file://`` store on a laptop and an ``s3://`` bucket on a cluster.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink

from operators.artifacts_plugin import artifact_url
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


class ModelLink(_ResultLink):
    """The model's metadata (dataset hash, config, curves, metrics); weights are not served."""

    name = "Model metadata"
    result_field = "model_key"


class TrainedModelLink(ModelLink):
    suffix = "/metadata.json"
