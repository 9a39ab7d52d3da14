"""Real monitoring processes for the tests: Pushgateway, Prometheus, and a pipeline run feeding them.

Everything listens on 127.0.0.1 on free ports and is stopped at the end of the session. The
pipeline run is the retraining DAG on scikit-learn's digits, run twice with ``dag.test()`` in a
subprocess (the second run has a champion to compare with), pushing to the Pushgateway.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PUSHGATEWAY = shutil.which("prometheus-pushgateway") or "/usr/bin/prometheus-pushgateway"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, what: str, tries: int = 300) -> None:
    for _ in range(tries):
        if process.poll() is not None:
            pytest.fail(f"{what} exited with code {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"{what} did not become ready at {url}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(PUSHGATEWAY).exists():
        pytest.fail("prometheus-pushgateway is not installed (make install installs it)")
    port = free_port()
    folder = tmp_path_factory.mktemp("pushgateway")
    process = subprocess.Popen(
        [PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}", f"--persistence.file={folder / 'pg.data'}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/-/ready", process, "pushgateway")
        yield url
    finally:
        stop(process)


@dataclass
class Prometheus:
    url: str

    def query(self, promql: str) -> list[dict]:
        params = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{params}", timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def wait_for(self, promql: str, tries: int = 100) -> list[dict]:
        for _ in range(tries):
            result = self.query(promql)
            if result:
                return result
            time.sleep(0.2)
        return []


def start_prometheus(config: dict, folder: Path) -> tuple[subprocess.Popen, str]:
    if not Path(PROMETHEUS).exists():
        pytest.fail("prometheus is not installed (make install installs it)")
    port = free_port()
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
        ],
        stdout=(folder / "prometheus.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/-/ready", process, "prometheus")
    return process, url


def write_digits_pipeline(folder: Path, pushgateway: str) -> Path:
    """The digits pipeline of the e2e test, pushing its metrics to ``pushgateway``."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    (folder / "data").mkdir(parents=True, exist_ok=True)
    np.savez(folder / "data" / "good.npz", x=(digits.images / 16.0).astype("float32"), y=digits.target)
    config = {
        "name": "digits",
        "model_name": "digits",
        "owner": "tests",
        "schedule": "@daily",
        "store_url": f"file://{folder / 'store'}",
        "data": {
            "source": {"kind": "npz", "uri": str(folder / "data" / "{partition}.npz")},
            "split": {"validation_fraction": 0.1, "test_fraction": 0.25, "seed": 0},
            "input_shape": [8, 8],
            "num_classes": 10,
        },
        "training": {
            "layers": [{"type": "flatten"}, {"type": "dense", "units": 32, "activation": "relu"}],
            "optimizer": {"name": "adam", "learning_rate": 0.01},
            "epochs": 4,
            "batch_size": 64,
        },
        # A low floor and a generous drop: the second run is promoted over the first.
        "gate": {"min_accuracy": 0.5, "max_accuracy_drop": 0.5},
        "metrics": {"pushgateway_url": pushgateway},
    }
    pipelines = folder / "pipelines"
    pipelines.mkdir(exist_ok=True)
    (pipelines / "digits.yaml").write_text(yaml.safe_dump(config))
    return pipelines


@dataclass
class PipelineRuns:
    pushgateway: str
    prometheus: Prometheus
    run_lines: list[str]


@pytest.fixture(scope="session")
def pipeline_runs(pushgateway: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineRuns]:
    """Two real runs of ``retrain_digits`` pushed to a real Pushgateway scraped by a real Prometheus."""
    folder = tmp_path_factory.mktemp("digits-monitoring")
    pipelines = write_digits_pipeline(folder, pushgateway)
    env = {**os.environ, "SLIPWAY_PIPELINES_DIR": str(pipelines)}
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, env=env
    )
    lines = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "scripts.run_dag", "retrain_digits", "--conf", '{"partition": "good"}'],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        lines.append(done.stdout.strip().splitlines()[-1])
    host = pushgateway.removeprefix("http://")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(REPO / "monitoring" / "rules" / "slipway.yml")],
        "scrape_configs": [
            {
                "job_name": "slipway-pushgateway",
                "honor_labels": True,
                "static_configs": [{"targets": [host]}],
            }
        ],
    }
    process, url = start_prometheus(config, tmp_path_factory.mktemp("prometheus"))
    try:
        prometheus = Prometheus(url)
        # Two scrapes at least, so rate()/increase() over the pushed counters have two points.
        assert prometheus.wait_for('count_over_time(slipway_run_success{pipeline="digits"}[1m]) >= 3')
        yield PipelineRuns(pushgateway, prometheus, lines)
    finally:
        stop(process)


@pytest.fixture(scope="session")
def serving_target() -> str | None:
    """A running ``python -m slipway serve`` for the serving panels, once issue 10 has landed.

    Until ``slipway.serving`` exists the serving panels are skipped (see test_dashboards.py). When
    it does, this fixture must start the server on the digits model and add it to the test
    Prometheus as job ``slipway-serving``; it fails loudly rather than letting those panels pass
    without data.
    """
    import importlib.util

    if importlib.util.find_spec("slipway.serving") is None:
        return None
    pytest.fail(
        "slipway.serving is importable: start `python -m slipway serve` here and scrape it as "
        "job slipway-serving, so the serving panels are checked against real data"
    )
