"""Serve run artifacts, the run and model pages, and the reports' assets through the API server.

Why: a task's extra link has to open in the browser, and neither ``file://`` nor ``s3://`` URLs
do; and the people using Slipway are often in a cluster without internet. This plugin mounts on
the API server (URLs built by ``operators/urls.py``):

* ``/slipway/artifacts/<pipeline>/<key>`` streams a report-like object from the pipeline's store.
  Data Docs pages are rewritten on the way out to load Bootstrap, jQuery, Font Awesome and Vega
  from Slipway instead of public CDNs (``slipway.pages.assets``);
* ``/slipway/runs/<pipeline>/<run_id>`` the run page, ``/slipway/models/<pipeline>`` the model page
  (rendered by ``slipway.pages``; this module only gathers what Airflow knows about the run);
* ``/slipway/static/vendor/<package>@<version>/<file>`` the vendored assets, with long-lived
  immutable caching (the path carries the version). They are public open-source files, served
  without a login like Airflow's own UI assets.

Access to artifacts and pages: the caller must be logged in to Airflow (the UI's session cookie or
a bearer token) and allowed to read the runs of the pipeline's DAG. Only report-like artifacts are
served: keys under ``runs/<pipeline>/`` and the model's registry attachments and metadata; never
datasets or model weights.
"""

from __future__ import annotations

import mimetypes
from typing import Any
from urllib.parse import quote

from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep
from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse

from operators.pipelines import pipeline_by_name
from operators.urls import URL_PREFIX, artifact_url, base_path, model_page_url, run_page_url, static_url
from slipway.config import PipelineConfig
from slipway.pages.assets import IMMUTABLE_CACHE, AssetNotFound, offline_html, read_asset, site_root_from
from slipway.store import ArtifactNotFound, StoreError, open_store

app = FastAPI(title="Slipway artifacts", description=__doc__)
PAGE_CACHE = "private, no-cache"  # a run page changes while the run goes on
ARTIFACT_CACHE = "private, max-age=300"
DATA_DOCS = "/validate/data_docs/"


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


def _pipeline(pipeline: str, user: object) -> PipelineConfig:
    _authorize(pipeline, user)
    config = pipeline_by_name(pipeline)
    if config is None:
        raise HTTPException(status_code=404, detail=f"no pipeline named {pipeline!r}")
    return config


@app.get("/artifacts/{pipeline}/{key:path}")
def get_artifact(pipeline: str, key: str, user: GetUserDep) -> Response:
    config = _pipeline(pipeline, user)
    if not is_servable(key, config.name, config.model_name):
        raise HTTPException(status_code=404, detail=f"{key!r} is not a report artifact of {pipeline}")
    try:
        data = open_store(config.store_url).get_bytes(key)
    except ArtifactNotFound:
        raise HTTPException(status_code=404, detail=f"no artifact {key!r} in {pipeline}'s store") from None
    except StoreError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    media_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
    if media_type == "text/html" and DATA_DOCS in key:
        site_index = key[: key.index(DATA_DOCS) + len(DATA_DOCS)] + "index.html"
        page = offline_html(data.decode("utf-8"), static_url(), site_root_from(key, site_index))
        data = page.encode("utf-8")
    return Response(content=data, media_type=media_type, headers={"Cache-Control": ARTIFACT_CACHE})


@app.get("/static/vendor/{path:path}")
def get_vendored(path: str, request: Request) -> Response:
    try:
        data, content_type, etag = read_asset(path)
    except AssetNotFound:
        raise HTTPException(status_code=404, detail=f"no vendored asset {path!r}") from None
    headers = {"Cache-Control": IMMUTABLE_CACHE, "ETag": etag, "X-Content-Type-Options": "nosniff"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(content=data, media_type=content_type, headers=headers)


@app.get("/runs/{pipeline}/{run_id:path}", response_class=HTMLResponse)
def get_run_page(pipeline: str, run_id: str, user: GetUserDep, session: SessionDep) -> HTMLResponse:
    from slipway.pages.run import load_run, render_run_page
    from slipway.steps.context import RunContext

    config = _pipeline(pipeline, user)
    trigger = _trigger(session, config, run_id)
    try:
        record = load_run(RunContext.create(config, run_id))
    except ValueError as exc:  # a run id without a usable character
        raise HTTPException(status_code=404, detail=str(exc)) from None
    if trigger is None and record.ingest is None:
        raise HTTPException(status_code=404, detail=f"no run {run_id!r} of {pipeline}")
    page = render_run_page(
        record,
        trigger=trigger,
        artifact_url=lambda key: artifact_url(config.name, key) if key else None,
        model_url=model_page_url(config.name),
    )
    return HTMLResponse(page, headers={"Cache-Control": PAGE_CACHE})


@app.get("/models/{pipeline}", response_class=HTMLResponse)
def get_model_page(pipeline: str, user: GetUserDep) -> HTMLResponse:
    from slipway.pages.model import load_model, render_model_page

    config = _pipeline(pipeline, user)
    record = load_model(open_store(config.store_url), config.model_name, config.name)
    page = render_model_page(record, run_url=lambda p, r: run_page_url(p, r) if p == config.name else None)
    return HTMLResponse(page, headers={"Cache-Control": PAGE_CACHE})


def _trigger(session: Any, config: PipelineConfig, run_id: str) -> Any:
    """What Airflow's metadata database knows about the run: trigger, parameters, task states."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import select

    from operators.params import param_defaults
    from slipway.pages.run import TaskState, Trigger

    dag_id = f"retrain_{config.name}"
    run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
    if run is None:
        return None
    tis = session.scalars(
        select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
    ).all()
    ui = f"{base_path()}/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks"
    conf = dict(run.conf or {})
    return Trigger(
        run_type=_text(run.run_type),
        triggered_by=_text(run.triggered_by),
        user=run.triggering_user_name,
        state=_text(run.state),
        logical_date=run.logical_date,
        start=run.start_date,
        end=run.end_date,
        conf=conf,
        params={**param_defaults(config), **conf},
        tasks=tuple(
            TaskState(ti.task_id, _text(ti.state), ti.try_number, f"{ui}/{ti.task_id}")
            for ti in sorted(tis, key=lambda t: t.start_date or t.queued_dttm or run.run_after)
        ),
    )


def _text(value: Any) -> str | None:
    """An Airflow enum (or string) as its plain value."""
    if value is None:
        return None
    return str(getattr(value, "value", value)) or None


class SlipwayPlugin(AirflowPlugin):
    name = "slipway"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Slipway artifacts"}]
