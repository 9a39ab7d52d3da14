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
        key = result.get(self.result_field) if isinstance(result, dict) else None
        if not key:
            return ""
        pipeline = load_config(operator.config_path).name
        return artifact_url(pipeline, f"{key}{self.suffix}")


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


class TrainedModelLink(ModelLink):
    suffix = "/metadata.json"
