"""Operator extra links: buttons on the task page that open what the step produced.

Airflow 3 computes a link on the worker when the task finishes (``get_link`` with the running
task instance) and stores it as an XCom, so the link is read from the step's result.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink


class _ResultLink(BaseOperatorLink):
    result_field: str = ""

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        try:
            result = ti_key.xcom_pull(task_ids=operator.task_id, key="return_value")
        except Exception:
            return ""
        return (result or {}).get(self.result_field, "") if isinstance(result, dict) else ""


class DataDocsLink(_ResultLink):
    name = "Data Docs"
    result_field = "data_docs_uri"


class EvaluationReportLink(_ResultLink):
    name = "Evaluation report"
    result_field = "report_uri"


class ModelLink(_ResultLink):
    name = "Model artifacts"
    result_field = "model_uri"
