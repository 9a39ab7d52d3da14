"""A person can look at it: ``make monitor`` serves the local state, and Prometheus' graph shows a run.

The screenshot is taken with headless Chromium (Debian ``chromium`` through Playwright, no browser
download) of Prometheus' graph page for the step durations of the digits runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from slipway import metrics
from slipway.config import MetricsConfig
from tests.monitoring.conftest import REPO, PipelineRuns, Prometheus, free_port

CHROMIUM = "/usr/bin/chromium"


def test_make_monitor_serves_textfiles_and_pushes(tmp_path: Path) -> None:
    textfiles = tmp_path / "metrics"
    batch = metrics.MetricsBatch(pipeline="digits", step="train")
    batch.set("slipway_training_final_loss", 0.31, model="digits")
    metrics.step_outcome(batch, succeeded=True, duration_s=4.0)
    metrics.emit(batch, MetricsConfig(textfile_dir=str(textfiles)))
    ports = {name: free_port() for name in ("prometheus", "pushgateway", "textfile")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scripts.monitor",
            "--state",
            str(tmp_path / "state"),
            "--textfile-dir",
            str(textfiles),
        ]
        + [f"--{name}-port={port}" for name, port in ports.items()],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        printed = []
        for line in process.stdout:
            printed.append(line)
            if line.startswith("SLIPWAY_MONITOR_READY"):
                break
        assert any("/graph?g0.expr=slipway_step_duration_seconds" in line for line in printed), printed
        prometheus = Prometheus(f"http://127.0.0.1:{ports['prometheus']}")
        found = prometheus.wait_for(
            'slipway_training_final_loss{pipeline="digits",job="slipway-textfile"}', tries=150
        )
        assert found and float(found[0]["value"][1]) == 0.31
        pushed = metrics.MetricsBatch(pipeline="digits", step="validate")
        pushed.set("slipway_validation_failed_expectations", 3)
        metrics.emit(pushed, MetricsConfig(pushgateway_url=f"http://127.0.0.1:{ports['pushgateway']}"))
        found = prometheus.wait_for(
            'slipway_validation_failed_expectations{job="slipway",step="validate"}', tries=150
        )
        assert found and float(found[0]["value"][1]) == 3
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


@pytest.mark.slow
def test_screenshot_of_the_prometheus_graph_of_a_run(pipeline_runs: PipelineRuns, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (make install installs it)")
    from playwright.sync_api import sync_playwright

    url = f"{pipeline_runs.prometheus.url}/graph?g0.expr=slipway_step_duration_seconds&g0.tab=0&g0.range_input=15m"
    shot = tmp_path / "prometheus-graph.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)
            # The legend lists one line per series once the query has been drawn.
            page.wait_for_function(
                "document.body.innerText.includes('slipway_step_duration_seconds{')", timeout=60_000
            )
            text = page.inner_text("body")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    for step in ("ingest", "validate", "train", "evaluate", "gate", "register", "promote"):
        assert f'step="{step}"' in text, text
    assert 'pipeline="digits"' in text
    assert shot.stat().st_size > 20_000
    keep = os.environ.get("SLIPWAY_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        (Path(keep) / shot.name).write_bytes(shot.read_bytes())
