"""Serve run artifacts (Data Docs, evaluation reports) through the Airflow API server.

Why: a task's extra link has to open in the browser, and neither ``file://`` nor ``s3://``
URLs do. This plugin mounts ``/slipway/artifacts/<pipeline>/<key>`` on the API server and
streams the object from the pipeline's artifact store, whatever the backend.

Access: the caller must be logged in to Airflow (the UI's session cookie or a bearer token) and
allowed to read the runs of the pipeline's DAG. Only report-like artifacts are served: keys under
``runs/<pipeline>/`` and the model's registry attachments; never datasets or model weights.
"""

from __future__ import annotations

import mimetypes
from urllib.parse import urlsplit

from airflow.api_fastapi.core_api.security import GetUserDep
from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI, HTTPException, Response

from operators.pipelines import pipeline_by_name
from slipway.store import ArtifactNotFound, StoreError, open_store

URL_PREFIX = "/slipway"
app = FastAPI(title="Slipway artifacts", description=__doc__)


def artifact_url(pipeline: str, key: str) -> str:
    """The browser URL of an artifact, under the API server's base path."""
    try:
        from airflow.configuration import conf

        base_path = urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")
    except Exception:
        base_path = ""
    return f"{base_path}{URL_PREFIX}/artifacts/{pipeline}/{key}"


def is_servable(key: str, pipeline: str, model_name: str) -> bool:
    """Reports and metadata only: a run's outputs, a version's attachments and metadata.json."""
    if ".." in key.split("/"):
        return False
    if key.startswith((f"runs/{pipeline}/", f"registry/{model_name}/_registry/attachments/")):
        return True
    parts = key.split("/")
    return (
        len(parts) == 4
        and parts[:2] == ["registry", model_name]
        and parts[2].isdigit()
        and parts[3] == "metadata.json"
    )


def _authorize(pipeline: str, user: object) -> None:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    allowed = get_auth_manager().is_authorized_dag(
        method="GET",
        access_entity=DagAccessEntity.RUN,
        details=DagDetails(id=f"retrain_{pipeline}"),
        user=user,
    )
    if not allowed:
        raise HTTPException(status_code=403, detail=f"not allowed to read runs of retrain_{pipeline}")


@app.get("/artifacts/{pipeline}/{key:path}")
def get_artifact(pipeline: str, key: str, user: GetUserDep) -> Response:
    _authorize(pipeline, user)
    config = pipeline_by_name(pipeline)
    if config is None:
        raise HTTPException(status_code=404, detail=f"no pipeline named {pipeline!r}")
    if not is_servable(key, config.name, config.model_name):
        raise HTTPException(status_code=404, detail=f"{key!r} is not a report artifact of {pipeline}")
    try:
        data = open_store(config.store_url).get_bytes(key)
    except ArtifactNotFound:
        raise HTTPException(status_code=404, detail=f"no artifact {key!r} in {pipeline}'s store") from None
    except StoreError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    media_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
    return Response(content=data, media_type=media_type, headers={"Cache-Control": "private, max-age=300"})


class SlipwayPlugin(AirflowPlugin):
    name = "slipway"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Slipway artifacts"}]
