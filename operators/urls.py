"""Browser URLs of what the artifacts plugin serves; safe to import while DAGs are parsed.

Kept apart from ``operators/artifacts_plugin.py`` so that task links (computed on the worker) and
DAG files never import the API-server plugin and its FastAPI app.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

URL_PREFIX = "/slipway"


def base_path() -> str:
    """The API server's base path (``[api] base_url``), '' when served at the root."""
    try:
        from airflow.configuration import conf

        return urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")
    except Exception:  # no Airflow configuration at hand: links relative to the server root
        return ""


def artifact_url(pipeline: str, key: str) -> str:
    """The browser URL of an artifact, under the API server's base path."""
    return f"{base_path()}{URL_PREFIX}/artifacts/{quote(pipeline, safe='')}/{quote(key)}"


def run_page_url(pipeline: str, run_id: str, anchor: str = "") -> str:
    """The run page of ``run_id`` (the Airflow run id, quoted whole: it contains ':' and '+')."""
    fragment = f"#{anchor}" if anchor else ""
    return f"{base_path()}{URL_PREFIX}/runs/{quote(pipeline, safe='')}/{quote(run_id, safe='')}{fragment}"


def model_page_url(pipeline: str) -> str:
    return f"{base_path()}{URL_PREFIX}/models/{quote(pipeline, safe='')}"


def static_url() -> str:
    """Where the vendored browser assets are served (``slipway.pages.assets``)."""
    return f"{base_path()}{URL_PREFIX}/static/vendor"
