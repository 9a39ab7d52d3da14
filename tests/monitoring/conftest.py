"""Real monitoring processes for the tests: Pushgateway, Prometheus, and a pipeline run feeding them.

Everything listens on 127.0.0.1 on free ports and is stopped at the end of the session. The
pipeline run is the retraining DAG on scikit-learn's digits, run twice with ``dag.test()`` in a
subprocess (the second run has a champion to compare with), pushing to the Pushgateway. The
champion those runs promoted is then served by a real ``python -m slipway serve`` behind a real
``python -m slipway route``, both scraped by the same Prometheus, with a bounded background stream
of digits predict requests going through the router while the tests query the panels.
"""

from __future__ import annotations

import collections
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.serving.servers import process, send

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PUSHGATEWAY = shutil.which("prometheus-pushgateway") or "/usr/bin/prometheus-pushgateway"
PREDICT = "/v1/models/digits:predict"
# The server answers this share of predict requests with 500 on purpose (``--fault-rate``), so the
# error-ratio panel has a 5xx series to show; well under the 5 % of SlipwayServingErrorRate.
FAULT_RATE = 0.02


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


class Traffic(threading.Thread):
    """A bounded stream of digits predict requests, sent one after another in the background.

    It stops after ``max_requests`` requests, after ``max_seconds``, or on ``stop()``, whichever
    comes first, and counts the answers' status codes (0 for a connection that failed).
    """

    def __init__(
        self,
        url: str,
        images: list,
        max_requests: int = 4000,
        max_seconds: float = 900.0,
        pause_s: float = 0.05,
    ) -> None:
        super().__init__(name="slipway-test-traffic", daemon=True)
        self.url, self.images = url, images
        self.max_requests, self.max_seconds, self.pause_s = max_requests, max_seconds, pause_s
        self.codes: collections.Counter[int] = collections.Counter()
        self.stopping = threading.Event()

    def run(self) -> None:
        rng = random.Random(0)
        deadline = time.monotonic() + self.max_seconds
        for _ in range(self.max_requests):
            if self.stopping.is_set() or time.monotonic() > deadline:
                return
            batch = [self.images[rng.randrange(len(self.images))] for _ in range(rng.randint(1, 4))]
            try:
                status = send(self.url, json.dumps({"instances": batch}).encode())[0]
            except OSError:
                status = 0
            self.codes[status] += 1
            self.stopping.wait(self.pause_s)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


@dataclass
class Serving:
    server: str
    router: str
    traffic: Traffic


@contextmanager
def serving_stack(store_url: str, folder: Path) -> Iterator[Serving]:
    """``slipway serve`` on the digits champion of ``store_url``, ``slipway route`` in front, traffic."""
    from sklearn.datasets import load_digits

    server, router = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    serve = ["serve", "--store-url", store_url, "--model", "digits", "--version", "champion"]
    serve += ["--port", server.rsplit(":", 1)[1], "--workers", "1", "--fault-rate", str(FAULT_RATE)]
    route = ["route", "--port", router.rsplit(":", 1)[1], "--backend", f"stable={server}"]
    images = (load_digits().images / 16.0).round(4).tolist()
    with (
        process(serve, f"{server}/readyz", env={"SLIPWAY_SERVING_CACHE": str(folder / "cache")}),
        process(route, f"{router}/readyz"),
    ):
        traffic = Traffic(router + PREDICT, images)
        traffic.start()
        try:
            yield Serving(server, router, traffic)
        finally:
            traffic.stop()


@dataclass
class PipelineRuns:
    pushgateway: str
    prometheus: Prometheus
    run_lines: list[str]
    store_url: str
    serving: Serving


@pytest.fixture(scope="session")
def pipeline_runs(pushgateway: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineRuns]:
    """Two real runs of ``retrain_digits`` pushed to a real Pushgateway scraped by a real Prometheus,
    which also scrapes the model server and router serving the champion the runs promoted."""
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
    store_url = f"file://{folder / 'store'}"
    with ExitStack() as stack:
        serving = stack.enter_context(serving_stack(store_url, folder))
        host = pushgateway.removeprefix("http://")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(REPO / "monitoring" / "rules" / "slipway.yml")],
            "scrape_configs": [
                {
                    "job_name": "slipway-pushgateway",
                    "honor_labels": True,
                    "static_configs": [{"targets": [host]}],
                },
                {
                    "job_name": "slipway-serving",
                    "static_configs": [{"targets": [serving.server.removeprefix("http://")]}],
                },
                {
                    "job_name": "slipway-router",
                    "static_configs": [{"targets": [serving.router.removeprefix("http://")]}],
                },
            ],
        }
        process_, url = start_prometheus(config, tmp_path_factory.mktemp("prometheus"))
        stack.callback(stop, process_)  # stopped before the servers it scrapes
        prometheus = Prometheus(url)
        # Two scrapes at least, so rate()/increase() over the pushed counters have two points.
        assert prometheus.wait_for('count_over_time(slipway_run_success{pipeline="digits"}[1m]) >= 3')
        yield PipelineRuns(pushgateway, prometheus, lines, store_url, serving)


@pytest.fixture(scope="session")
def serving_target(pipeline_runs: PipelineRuns) -> Serving:
    """The model server and router of ``pipeline_runs``, once Prometheus has scraped their traffic.

    Waits until the router, the served predictions and the injected 5xx answers each have at
    least two samples in Prometheus, so every serving panel's rate() has something to work with.
    """
    for promql in (
        'count_over_time(slipway_router_requests_total{backend="stable",code="200"}[1m]) >= 2',
        'count_over_time(slipway_serving_predictions_total{model="digits"}[1m]) >= 2',
        'count_over_time(slipway_serving_requests_total{model="digits",code="500"}[1m]) >= 2',
    ):
        if not pipeline_runs.prometheus.wait_for(promql, tries=600):
            pytest.fail(
                f"no serving data in Prometheus for {promql}; traffic so far: {pipeline_runs.serving.traffic.codes}"
            )
    return pipeline_runs.serving
