"""The statsd_exporter mapping against the StatsD lines a real local Airflow emits.

A UDP socket stands in for statsd_exporter. With the project's StatsD settings (read from the
Makefile), a real ``airflow dag-processor`` parses a DAG folder with one broken file, a real
``airflow scheduler`` runs a few loops (heartbeats), and two DAG runs (one succeeds, one fails)
go through Airflow's real DagRun and task-runner code. Every line is then mapped with
``monitoring/statsd/mapping.yml`` (statsd_exporter's semantics, see statsd_mapping.py).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.monitoring.conftest import REPO
from tests.monitoring.statsd_mapping import Mapped, Mapping, StatsdLine, parse_line

pytestmark = pytest.mark.slow

QUIET: dict = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
MAPPING = REPO / "monitoring" / "statsd" / "mapping.yml"
PROBE_DAGS = """
from datetime import datetime
from airflow.sdk import DAG, task

for dag_id, fails in (("statsd_probe_ok", False), ("statsd_probe_fail", True)):
    with DAG(dag_id=dag_id, start_date=datetime(2026, 1, 1), schedule=None, catchup=False):
        @task(retries=0)
        def work(fails=fails):
            if fails:
                raise RuntimeError("probe failure")

        work()
"""


def makefile_airflow_metrics() -> dict[str, str]:
    """The ``AIRFLOW__METRICS__*`` settings the Makefile exports for ``make airflow``."""
    text = (REPO / "Makefile").read_text()
    found = dict(re.findall(r"^export (AIRFLOW__METRICS__\w+) \??:?= ?(.*)$", text, re.MULTILINE))
    assert found.get("AIRFLOW__METRICS__STATSD_ON") == "True", "StatsD is not on in the Makefile"
    return found


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> list[StatsdLine]:
    home = tmp_path_factory.mktemp("statsd-airflow")
    dags = home / "dags"
    dags.mkdir()
    (dags / "probe.py").write_text(PROBE_DAGS)
    (dags / "broken.py").write_text(
        "from airflow.sdk import DAG  # a dag file that does not import\nbroken (\n"
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    lines: list[str] = []
    stop = threading.Event()

    def receive() -> None:
        while not stop.is_set():
            try:
                data = sock.recv(65535)
            except TimeoutError:
                continue
            lines.extend(data.decode().splitlines())

    reader = threading.Thread(target=receive, daemon=True)
    reader.start()
    env = {
        **os.environ,
        **makefile_airflow_metrics(),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(sock.getsockname()[1]),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
    }
    airflow = [sys.executable, "-m", "airflow"]

    def run(args: list[str]) -> None:
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}{done.stderr[-2000:]}"

    try:
        run([*airflow, "db", "migrate"])
        # The DAG processor and the scheduler run side by side, as `airflow standalone` runs them.
        processor = subprocess.Popen([*airflow, "dag-processor", "--num-runs", "2"], env=env, **QUIET)
        run([*airflow, "scheduler", "--num-runs", "3"])
        assert processor.wait(timeout=300) == 0, "airflow dag-processor failed"
        run([sys.executable, str(Path(__file__).with_name("statsd_probe.py")), str(dags / "probe.py")])
    finally:
        stop.set()
        reader.join(timeout=5)
        sock.close()
    assert lines, "Airflow sent no StatsD line"
    return [parse_line(line) for line in lines]


def mapped(captured: list[StatsdLine]) -> list[Mapped]:
    mapping = Mapping(MAPPING)
    return [m for m in (mapping.apply(line) for line in captured) if m is not None]


def series(captured: list[StatsdLine], metric: str) -> list[dict[str, str]]:
    return [dict(m.labels) for m in mapped(captured) if m.metric == metric]


def test_every_mapping_matches_a_line_airflow_emits(captured: list[StatsdLine]) -> None:
    mapping = Mapping(MAPPING)
    used = {m.rule for m in mapped(captured)}
    names = [rule["name"] for _, rule in mapping.rules if rule.get("action") != "drop"]
    unused = [
        rule["name"]
        for i, (_, rule) in enumerate(mapping.rules)
        if rule.get("action") != "drop" and i not in used
    ]
    assert not unused, f"mapped names no captured line produces: {unused}"
    distinct = sorted({line.name for line in captured})
    print(f"\nStatsD names captured: {len(distinct)}; mapped to {len(names)} Prometheus metrics")


def test_dag_run_durations_by_state_and_dag(captured: list[StatsdLine]) -> None:
    runs = series(captured, "airflow_dagrun_duration_seconds")
    assert {(s["dag_id"], s["state"]) for s in runs} >= {
        ("statsd_probe_ok", "success"),
        ("statsd_probe_fail", "failed"),
    }


def test_task_failures_name_the_task(captured: list[StatsdLine]) -> None:
    failures = series(captured, "airflow_task_failures_total")
    assert {(s["dag_id"], s["task_id"]) for s in failures} == {("statsd_probe_fail", "work")}
    finished = series(captured, "airflow_task_finished_total")
    assert {(s["dag_id"], s["state"]) for s in finished} >= {
        ("statsd_probe_ok", "success"),
        ("statsd_probe_fail", "failed"),
    }


def test_scheduler_heartbeat_and_import_errors(captured: list[StatsdLine]) -> None:
    assert series(captured, "airflow_scheduler_heartbeat_total")
    mapping = Mapping(MAPPING)
    errors = [
        line.value
        for line in captured
        if (m := mapping.apply(line)) and m.metric == "airflow_dag_processing_import_errors"
    ]
    assert errors and max(errors) == 1  # broken.py


def test_rules_and_dashboards_use_only_mapped_airflow_names() -> None:
    mapping = Mapping(MAPPING)
    produced = {rule["name"] for _, rule in mapping.rules if rule.get("action") != "drop"}
    produced |= {f"{n}_{s}" for n in produced for s in ("bucket", "sum", "count")}
    text = (REPO / "monitoring" / "rules" / "slipway.yml").read_text()
    text += "".join(p.read_text() for p in (REPO / "monitoring" / "grafana").glob("*.json"))
    used = set(re.findall(r"\bairflow_[a-z0-9_]+", text))
    assert used and used <= produced, used - produced
