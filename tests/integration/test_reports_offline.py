"""Every report and page renders in a browser that can reach nothing but the Airflow API server.

A real digits run (ingest, validate, train for 10 epochs, evaluate, gate, register, promote)
writes real Data Docs and evaluation reports to a ``file://`` store. Airflow's real API server app
(``create_app``: the Slipway plugin mounted by Airflow's plugin manager, the SimpleAuthManager,
a JWT from Airflow's token machinery in the UI's session cookie) serves them on 127.0.0.1.
Headless Chromium (Debian's, never a downloaded one) opens each page with every other request
aborted, and the test requires: the Data Docs list of validation results filled by its
JavaScript, Font Awesome's font loaded from Slipway, no request that left the server, no failed
request, and no console error. Screenshots and the timings go to ``.slipway/test-artifacts/
offline-reports/`` (or ``$SLIPWAY_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = (
    Path(os.environ.get("SLIPWAY_TEST_ARTIFACTS") or REPO / ".slipway" / "test-artifacts") / "offline-reports"
)
HOSTILE_CLASS = "<img src=x onerror=alert(1)>zero"
RUN_ID = "manual__2026-12-01T10:00:00+00:00"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pipeline(tmp: Path) -> dict[str, Any]:
    return {
        "name": "digits",
        "model_name": "digits",
        "description": "Digits <b>retraining</b> <script>alert('description')</script>",
        "store_url": (tmp / "store").as_uri(),
        "data": {
            "source": {"kind": "digits", "scale": 16},
            "input_shape": [8, 8],
            "num_classes": 10,
            "class_names": [HOSTILE_CLASS, *[str(k) for k in range(1, 10)]],
        },
        "training": {"epochs": 10},
        "gate": {"min_accuracy": 0.5},
        "metrics": {"textfile_dir": str(tmp / "metrics")},
    }


def _run_pipeline(raw: dict[str, Any]) -> None:
    from slipway.config import parse_config
    from slipway.metrics import MetricsBatch
    from slipway.release import judge_candidate, promote_candidate, register_candidate
    from slipway.steps import evaluate, ingest, train, validate
    from slipway.steps.context import RunContext

    config = parse_config(raw)
    ctx = RunContext.create(config, RUN_ID)
    for step in (ingest, validate, train, evaluate):
        step.run(ctx, MetricsBatch(config.name, step.__name__.rsplit(".", 1)[-1]))
    blessing = judge_candidate(ctx, MetricsBatch(config.name, "gate"))
    assert blessing.blessed, blessing.reasons
    version = register_candidate(ctx, MetricsBatch(config.name, "register"))["version"]
    promote_candidate(ctx, MetricsBatch(config.name, "promote"), version)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """(base URL, JWT, store) of Airflow's API server app with two finished runs behind it."""
    import uvicorn

    tmp = tmp_path_factory.mktemp("offline")
    raw = _pipeline(tmp)
    (tmp / "pipelines").mkdir()
    (tmp / "pipelines" / "digits.yaml").write_text(yaml.safe_dump(raw))
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    _run_pipeline(raw)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLIPWAY_PIPELINES_DIR", str(tmp / "pipelines"))
        from airflow.api_fastapi.app import create_app, get_auth_manager
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

        from operators import artifacts_plugin

        assert Path(artifacts_plugin.__file__).is_relative_to(REPO)
        app = create_app()
        token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="ada", role="viewer"))
        port = _free_port()
        uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=uv.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not uv.started:
            assert thread.is_alive() and time.monotonic() < deadline, "API server did not start"
            time.sleep(0.1)
        from slipway.store import open_store

        yield f"http://127.0.0.1:{port}", token, open_store(raw["store_url"])
        uv.should_exit = True
        thread.join(timeout=30)


class Browser:
    """One Chromium page per report; records every request that tried to leave the server."""

    def __init__(self, playwright: Any, base: str, token: str) -> None:
        self.base = base
        self.browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        self.context = self.browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.add_cookies([{"name": "_token", "value": token, "url": base}])
        self.blocked: list[str] = []
        self.served: list[str] = []
        self.context.route("**/*", self._route)

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(self.base + "/"):
            self.served.append(url)
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def open(self, path: str, shot: str) -> tuple[Any, list[str]]:
        page = self.context.new_page()
        problems: list[str] = []
        page.on(
            "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
        )
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
        page.on(
            "response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None
        )
        response = page.goto(self.base + path, wait_until="networkidle")
        assert response is not None and response.status == 200, (path, response and response.status)
        page.evaluate("document.fonts.ready")
        page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
        return page, problems


def test_every_report_renders_offline(server) -> None:
    from playwright.sync_api import sync_playwright

    from operators.urls import URL_PREFIX

    base, token, store = server
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    runs = sorted(
        key.split("/")[2] for key in store.list("runs/digits") if key.endswith("ingest/result.json")
    )
    opened: dict[str, list[str]] = {}
    timings: dict[str, Any] = {}

    with sync_playwright() as playwright:
        browser = Browser(playwright, base, token)

        # Data Docs: the index's list of validation results is built by bootstrap-table
        docs = f"{URL_PREFIX}/artifacts/digits/runs/digits/{runs[0]}/validate/data_docs/"
        page, problems = browser.open(docs + "index.html", "data-docs-index")
        rows = page.locator("table.ge-index-page-validation-results-table tbody tr[data-href]")
        assert rows.count() == 2, page.content()[:2000]
        assert page.evaluate("document.fonts.check('900 16px \"Font Awesome 6 Free\"')")
        links = [rows.nth(i).get_attribute("data-href") for i in range(rows.count())]
        suites = page.eval_on_selector_all(
            "a.ge-index-page-table-expectation-suite-link", "els => els.map(e => e.getAttribute('href'))"
        )
        opened["data-docs-index"] = problems
        for i, link in enumerate([*links, *sorted(set(suites))]):
            name = f"data-docs-{'validation' if link.startswith('validations/') else 'suite'}-{i}"
            page, problems = browser.open(docs + link, name)
            assert page.locator("table, .card").count() > 0
            opened[name] = problems

        # evaluation reports (before and after the gate, and the version's copy), run and model pages
        for name, path in {
            "evaluation-report": f"runs/digits/{runs[0]}/evaluate/report.html",
            "gate-report": f"runs/digits/{runs[0]}/gate/report.html",
            "version-report": "registry/digits/_registry/attachments/1/report.html",
        }.items():
            page, problems = browser.open(f"{URL_PREFIX}/artifacts/digits/{path}", name)
            assert page.locator("img[src='x']").count() == 0 and HOSTILE_CLASS in page.evaluate(
                "document.body.textContent"
            )
            opened[name] = problems

        from operators.urls import run_page_url

        run_path = run_page_url("digits", RUN_ID)
        page, problems = browser.open(run_path, "run-page")
        assert page.locator("#training svg polyline").count() == 4  # loss, accuracy x train, validation
        assert page.locator("script").count() == 0 and page.locator("img[src='x']").count() == 0
        assert "alert('description')" in page.inner_text("body")
        timings["run_page_browser_load_ms"] = page.evaluate(
            "(() => { const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime; })()"
        )
        opened["run-page"] = problems
        page, problems = browser.open(f"{URL_PREFIX}/models/digits", "model-page")
        assert "SERVING v1" in page.inner_text("body")
        opened["model-page"] = problems
        browser.browser.close()

    # the run page of a 10-epoch run, as the API server answers it (figure, not an assertion)
    import httpx

    with httpx.Client(base_url=base, cookies={"_token": token}) as http:
        samples = []
        for _ in range(10):
            started = time.perf_counter()
            assert http.get(run_path).status_code == 200
            samples.append((time.perf_counter() - started) * 1000)
    timings["run_page_server_ms_median_of_10"] = round(statistics.median(samples), 1)
    report = {
        "pages": sorted(opened),
        "blocked_requests": browser.blocked,
        "served_requests": len(browser.served),
        "vendored_requests": sorted(
            {u.split("/static/vendor/")[1] for u in browser.served if "/static/vendor/" in u}
        ),
        "timings": timings,
    }
    (ARTIFACTS / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))

    assert browser.blocked == [], browser.blocked
    assert {name: p for name, p in opened.items() if p} == {}
    assert any("fa-solid-900.woff2" in u for u in browser.served)
    assert any("bootstrap-table.min.js" in u for u in browser.served)
