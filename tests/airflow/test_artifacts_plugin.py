"""The artifacts plugin serves reports from the store behind Airflow auth, and nothing else; the
vendored assets with immutable caching; Data Docs pages rewritten to use them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from operators import artifacts_plugin, urls
from slipway.store import open_store


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from airflow.api_fastapi.core_api.security import get_user

    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    config = {
        "name": "digits",
        "model_name": "digits-model",
        "store_url": f"file://{tmp_path / 'store'}",
        "data": {"source": {"kind": "digits"}, "input_shape": [8, 8], "num_classes": 10},
    }
    (pipelines / "digits.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("SLIPWAY_PIPELINES_DIR", str(pipelines))
    store = open_store(config["store_url"])
    store.put_bytes("runs/digits/r1/validate/data_docs/index.html", b"<html>docs</html>")
    store.put_bytes(
        "runs/digits/r1/validate/data_docs/validations/s/r/t/page.html",
        b'<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>'
        b'<img src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png?d=1">',
    )
    store.put_bytes("registry/digits-model/_registry/attachments/1/report.html", b"<html>report</html>")
    store.put_bytes("registry/digits-model/1/metadata.json", b"{}")
    store.put_bytes("registry/digits-model/1/model.keras", b"weights")
    store.put_bytes("datasets/digits/abc/snapshot.npz", b"data")

    allowed = {"digits": True}

    def fake_authorize(pipeline: str, user: object) -> None:
        if not allowed.get(pipeline, True):
            raise artifacts_plugin.HTTPException(status_code=403, detail="no")

    monkeypatch.setattr(artifacts_plugin, "_authorize", fake_authorize)
    artifacts_plugin.app.dependency_overrides[get_user] = lambda: object()
    yield TestClient(artifacts_plugin.app), allowed
    artifacts_plugin.app.dependency_overrides.clear()


def test_serves_data_docs_and_reports(client) -> None:
    http, _ = client
    response = http.get("/artifacts/digits/runs/digits/r1/validate/data_docs/index.html")
    assert response.status_code == 200 and response.text == "<html>docs</html>"
    assert response.headers["content-type"].startswith("text/html")
    assert (
        http.get("/artifacts/digits/registry/digits-model/_registry/attachments/1/report.html").status_code
        == 200
    )
    assert http.get("/artifacts/digits/registry/digits-model/1/metadata.json").status_code == 200


@pytest.mark.parametrize(
    "key",
    [
        "datasets/digits/abc/snapshot.npz",  # data is not a report
        "registry/digits-model/1/model.keras",  # nor are weights
        "runs/digits/r1/../../../datasets/digits/abc/snapshot.npz",
        "runs/other/r1/result.json",
        "runs/digits/r1/missing.html",
    ],
)
def test_refuses_everything_else(client, key: str) -> None:
    http, _ = client
    assert http.get(f"/artifacts/digits/{key}").status_code == 404


def test_unknown_pipeline_and_forbidden(client) -> None:
    http, allowed = client
    assert http.get("/artifacts/nope/runs/nope/x.html").status_code == 404
    allowed["digits"] = False
    assert http.get("/artifacts/digits/runs/digits/r1/validate/data_docs/index.html").status_code == 403


def test_requires_login() -> None:
    response = TestClient(artifacts_plugin.app).get("/artifacts/digits/runs/digits/r1/x.html")
    assert response.status_code in (401, 403)


def test_urls_under_base_path() -> None:
    assert urls.artifact_url("digits", "runs/digits/r1/a.html").endswith(
        "/slipway/artifacts/digits/runs/digits/r1/a.html"
    )
    assert urls.run_page_url("digits", "manual__2026-12-01T10:00:00+00:00", "training").endswith(
        "/slipway/runs/digits/manual__2026-12-01T10%3A00%3A00%2B00%3A00#training"
    )


def test_data_docs_pages_load_vendored_assets(client) -> None:
    http, _ = client
    page = http.get("/artifacts/digits/runs/digits/r1/validate/data_docs/validations/s/r/t/page.html").text
    assert "https://" not in page
    assert "/slipway/static/vendor/jquery@3.7.1/dist/jquery.min.js" in page
    assert 'src="../../../../static/images/logo-long.png"' in page


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("jquery@3.7.1/dist/jquery.min.js", "text/javascript; charset=utf-8"),
        ("bootstrap@4.3.1/dist/css/bootstrap.min.css", "text/css; charset=utf-8"),
        ("@fortawesome/fontawesome-free@6.6.0/webfonts/fa-solid-900.woff2", "font/woff2"),
    ],
)
def test_vendored_assets_are_served_immutable(path: str, content_type: str) -> None:
    http = TestClient(artifacts_plugin.app)  # public library files: no login needed
    response = http.get(f"/static/vendor/{path}")
    assert response.status_code == 200 and response.headers["content-type"] == content_type
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    again = http.get(f"/static/vendor/{path}", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and not again.content
    assert http.get("/static/vendor/jquery@3.7.1/package.json").status_code == 404
    assert http.get("/static/vendor/../assets.py").status_code == 404


@pytest.fixture(scope="module")
def airflow_db() -> None:
    """The metadata DB: token validation checks the revoked-token table."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


@pytest.fixture
def real_auth(airflow_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Airflow's own SimpleAuthManager and JWTs: no dependency override, no patched _authorize."""
    from airflow.api_fastapi.app import init_auth_manager

    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    config = {
        "name": "digits",
        "model_name": "digits-model",
        "store_url": f"file://{tmp_path / 'store'}",
        "data": {"source": {"kind": "digits"}, "input_shape": [8, 8], "num_classes": 10},
    }
    (pipelines / "digits.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("SLIPWAY_PIPELINES_DIR", str(pipelines))
    open_store(config["store_url"]).put_bytes("runs/digits/r1/evaluate/report.html", b"<html>report</html>")
    return init_auth_manager()


def test_real_airflow_authorisation(real_auth) -> None:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    http = TestClient(artifacts_plugin.app)
    url = "/artifacts/digits/runs/digits/r1/evaluate/report.html"
    token = real_auth.generate_jwt(SimpleAuthManagerUser(username="ada", role="viewer"))
    ok = http.get(url, headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and ok.text == "<html>report</html>"
    # the UI's session cookie works the same way
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    http.cookies.set(COOKIE_NAME_JWT_TOKEN, token)
    assert http.get(url).status_code == 200
    http.cookies.clear()
    assert http.get(url).status_code == 401  # no credentials
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert http.get(url, headers={"Authorization": f"Bearer {forged}"}).status_code == 403


def test_dag_parse_modules_never_import_the_plugin() -> None:
    """Task links and operators build URLs from operators/urls.py; the FastAPI plugin stays out."""
    code = (
        "import sys, operators.links, operators.step, operators.release, operators.urls;"
        "print(sorted(m for m in sys.modules if m == 'operators.artifacts_plugin' or m.startswith('fastapi')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_run_and_model_pages(client, airflow_db) -> None:
    http, allowed = client
    store = open_store(artifacts_plugin.pipeline_by_name("digits").store_url)
    store.put_json(
        "runs/digits/manual__2026-12-01T10_00_00_00_00/ingest/result.json",
        {"snapshot_key": "datasets/digits/abc/snapshot.npz", "snapshot_hash": "abc", "rows": {"train": 10}},
    )
    page = http.get("/runs/digits/manual__2026-12-01T10%3A00%3A00%2B00%3A00")
    assert page.status_code == 200 and page.headers["cache-control"] == "private, no-cache"
    assert "datasets/digits/abc/snapshot.npz" in page.text and "not available here" in page.text
    assert http.get("/runs/digits/no-such-run").status_code == 404
    model = http.get("/models/digits")
    assert model.status_code == 200 and "NOTHING SERVES YET" in model.text
    allowed["digits"] = False
    assert http.get("/models/digits").status_code == 403
    assert http.get("/runs/digits/manual__2026-12-01T10%3A00%3A00%2B00%3A00").status_code == 403
