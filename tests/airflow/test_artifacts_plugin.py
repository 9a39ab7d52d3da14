"""The artifacts plugin serves reports from the store behind Airflow auth, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from operators import artifacts_plugin
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


def test_artifact_url_under_base_path() -> None:
    assert artifacts_plugin.artifact_url("digits", "runs/digits/r1/a.html").endswith(
        "/slipway/artifacts/digits/runs/digits/r1/a.html"
    )
