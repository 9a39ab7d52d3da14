"""Live: a canary rollout run by a real scheduler and triggerer survives their restarts.

``make airflow`` (LocalExecutor, SQLite) runs a two-task DAG written here: ``register`` hands the
candidate's version to ``canary``, the real deferrable ``SlipwayCanaryOperator``, rolling out
against real local Slipway servers behind the real router (``slipway.rollout.sandbox``) while
test-set images are replayed through it. Mid-rollout:

1. at step 1, deferred, the triggerer is stopped and a new one started: the waiting trigger (due
   after the old triggerer is gone: step 1's interval is 15 s, the others 3 s) is fired by the new
   triggerer and the rollout moves on;
2. at step 2, deferred, the task instance is cleared over the REST API: a new try runs
   ``execute`` from the start, which must resume the stored rollout at step 2 (same canary, the
   analyses already recorded kept) rather than start it again at step 0.

The rollout ends promoted, with every decision recorded once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from operators.canary import rollout_key
from slipway.config import load_config
from slipway.layout import counter_key, rollout_decisions_counter
from slipway.registry import ModelRegistry
from slipway.rollout.controller import summary
from slipway.rollout.sandbox import get
from slipway.store import open_store
from tests.live.airflow_server import AirflowServer, ApiError, _alive, _session_members, _signal
from tests.rollout.fleet import MODEL, Fleet, train_and_register
from tests.rollout.test_rollout_processes import _config, _replayer

pytestmark = [pytest.mark.slow, pytest.mark.live]

DAG_ID = "canary_restart"
STEPS = [10, 25, 50, 100]
ARTIFACTS = Path(
    os.environ.get("SLIPWAY_TEST_ARTIFACTS") or tempfile.mkdtemp(prefix="slipway-live-artifacts-")
)

DAG = """
import pendulum
from airflow.sdk import DAG, task

from operators.canary import SlipwayCanaryOperator

with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):

    @task(task_id="register")
    def register():
        return {{"version": {version}}}

    register() >> SlipwayCanaryOperator(task_id="canary", config_path={config!r})
"""


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _stop(pids: list[int], grace_s: float = 20) -> list[int]:
    """SIGTERM each pid, wait at most ``grace_s``, SIGKILL what is left; the pids still alive."""
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    for pid in pids:
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    return [p for p in pids if _alive(p)]


@contextmanager
def restarted_triggerer(server: AirflowServer, log: Path) -> Iterator[float]:
    """Stop the standalone's triggerer (SIGTERM, as a node drain would) and start another one
    with the same environment; yields the time (epoch seconds) the old one was gone. The new one
    is stopped when the block ends."""
    pids = [p for p in server.process_tree() if "triggerer" in _command_line(p)]
    assert pids, "no triggerer in the Airflow process tree"
    (top,) = [p for p in pids if _parent(p) not in pids]
    environ = dict(
        item.split("=", 1)
        for item in Path(f"/proc/{top}/environ").read_bytes().decode().split("\0")
        if "=" in item
    )
    cwd = os.readlink(f"/proc/{top}/cwd")
    assert _stop([top]) == [] and _stop(pids) == [], f"old triggerer still alive: {pids}"
    gone_at = time.time()
    with log.open("wb") as output:
        proc = subprocess.Popen(
            ["airflow", "triggerer"],
            env=environ,
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield gone_at
    finally:
        left = _stop([*_session_members(proc.pid), proc.pid])
        proc.wait(timeout=10)
        assert left == [], f"new triggerer processes still alive: {left}"


def _dag_ready(server: AirflowServer) -> bool:
    try:
        return not server.request("GET", f"/api/v2/dags/{DAG_ID}")["is_paused"]
    except ApiError:
        return False


def _task(server: AirflowServer, run_id: str) -> dict[str, Any]:
    return server.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id)}/taskInstances/canary")


def _when_deferred_at(server: AirflowServer, store: Any, key: str, run_id: str, step: int) -> dict[str, Any]:
    """The stored rollout once it is at ``step`` (or later) and the task is deferred."""

    def check() -> dict[str, Any] | None:
        try:
            state = store.get_json(key)
        except Exception:  # not started yet
            return None
        if state["status"] != "running" and state["progress"]["step"] < step:
            raise AssertionError(f"the rollout ended before step {step}: {summary(state)}")
        if state["progress"]["step"] >= step and _task(server, run_id)["state"] == "deferred":
            return state
        return None

    return server.wait_for(f"the rollout at step {step}, deferred", check, timeout_s=240, every_s=0.5)


def _clear(server: AirflowServer, run_id: str) -> None:
    """Clear the canary task instance; a try that is running at that moment is waited out."""
    body = {
        "dry_run": False,
        "dag_run_id": run_id,
        "task_ids": ["canary"],
        "only_failed": False,
        "reset_dag_runs": False,
        "prevent_running_task": True,
    }
    deadline = time.monotonic() + 60
    while True:
        try:
            server.request("POST", f"/api/v2/dags/{DAG_ID}/clearTaskInstances", body)
            return
        except ApiError as exc:
            if "running" not in str(exc.body).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _log_text(server: AirflowServer, run_id: str, try_number: int) -> str:
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id)}/taskInstances/canary/logs/{try_number}"
    content = server.request("GET", path + "?full_content=true").get("content") or []
    return "\n".join(
        json.dumps(line) if isinstance(line, dict) else str(line)
        for line in (content if isinstance(content, list) else [content])
    )


def test_rollout_resumes_at_the_same_step_after_triggerer_and_task_restarts(tmp_path: Path) -> None:
    began = time.monotonic()
    store_url = (tmp_path / "store").as_uri()
    stable = train_and_register(store_url, seed=1)
    candidate = train_and_register(store_url, seed=2)
    store = open_store(store_url)
    registry = ModelRegistry(store, MODEL)
    registry.set_alias("champion", stable, actor="test", run_id="setup", reason="the stable version")
    fleet = Fleet(tmp_path, store_url, stable)
    # Latency is not what this test is about: a loaded machine must not roll the canary back.
    # Step 1 waits longer: its trigger must still be waiting when the old triggerer is gone.
    intervals = [3, 15, 3, 3]
    config = _config(fleet, steps=STEPS, step_intervals_s=intervals, latency_tolerance_s=2.0)
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "canary_restart.py").write_text(
        textwrap.dedent(DAG.format(dag_id=DAG_ID, version=candidate, config=config))
    )
    server = AirflowServer(
        home=tmp_path / "airflow",
        sql_alchemy_conn=f"sqlite:///{tmp_path / 'airflow' / 'airflow.db'}",
        extra_env={
            "SLIPWAY_SERVING_CACHE": str(tmp_path / "cache"),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            # A task's supervisor notices the task has exited up to this long after its sockets
            # closed (default 5 s). The executor's report of a deferred try must reach the
            # scheduler before the trigger fires, or Airflow takes the resumed try for a task
            # changed externally and fails it: with 3 s intervals the default is too slow.
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
        },
        dags_folder=dags,
    )
    with fleet.running(with_prometheus=False):
        try:  # Airflow stops before the servers do: no task starts a server after their cleanup
            server.start()
            server.wait_for(f"{DAG_ID} to be parsed", lambda: _dag_ready(server), timeout_s=180)
            with _replayer(fleet, rate=30) as traffic:
                run = server.request("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None})
                run_id = run["dag_run_id"]
                key = rollout_key(load_config(config), run_id)

                # 1. The triggerer goes away while the task waits at step 1; a new one takes over.
                at_step_1 = _when_deferred_at(server, store, key, run_id, step=1)
                seen_at = time.time()
                with restarted_triggerer(server, tmp_path / "triggerer.log") as gone_at:
                    # 2. Deferred at step 2: the task instance is cleared, a new try starts.
                    before = _when_deferred_at(server, store, key, run_id, step=2)
                    try_before = _task(server, run_id)["try_number"]
                    _clear(server, run_id)
                    server.wait_for(
                        "the new try to defer",
                        lambda: (
                            _task(server, run_id)["try_number"] > try_before
                            and _task(server, run_id)["state"] == "deferred"
                        ),
                        timeout_s=180,
                        every_s=0.5,
                    )
                    resumed = store.get_json(key)
                    done = server.wait_run_finished(DAG_ID, quote(run_id), timeout_s=240)
            totals = traffic.totals()
            status, body = get(f"{fleet.urls['stable']}/v1/models/{MODEL}")
            serving = int(json.loads(body)["model_version_status"][0]["version"]) if status == 200 else None
            ti = _task(server, run_id)
            logs = _log_text(server, run_id, ti["try_number"])
            task_states = server.task_states(DAG_ID, quote(run_id))
        finally:
            left = server.stop()
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            if server.log_path.exists():
                shutil.copy(server.log_path, ARTIFACTS / "canary-restart-make-airflow.log")
            assert left == [], f"processes still alive after stop: {left}"
    final = store.get_json(key)
    decisions = store.get_json(counter_key(rollout_decisions_counter("digits")))

    took = time.monotonic() - began
    print(f"\n[canary restart] {json.dumps({'seconds': round(took), 'traffic': totals['total']})}")
    print(
        f"step at the triggerer restart: {at_step_1['progress']['step']},"
        f" seen deferred {at_step_1['due'] - seen_at:.1f} s before its trigger was due;"
        f" the old triggerer was gone {gone_at - seen_at:.1f} s later"
    )
    print(f"step before the clear: {before['progress']['step']}, analyses {len(before['analyses'])}")
    print(f"step after the new try: {resumed['progress']['step']}, analyses {len(resumed['analyses'])}")
    print("\n".join(summary(final)))

    assert done["state"] == "success", task_states
    assert ti["try_number"] == try_before + 1 and ti["state"] == "success"
    # Step 1's trigger was due after the old triggerer had gone: the new triggerer fired it.
    assert at_step_1["progress"]["step"] == 1 and at_step_1["due"] > gone_at
    assert before["analyses"][1]["time"] >= at_step_1["due"]
    # The new try resumed: the same step, the same canary, the analyses already recorded kept.
    assert resumed["progress"]["step"] >= before["progress"]["step"] >= 2
    assert resumed["started"] == before["started"] and resumed["canary"] == before["canary"]
    assert resumed["analyses"][: len(before["analyses"])] == before["analyses"]
    assert final["analyses"][: len(before["analyses"])] == before["analyses"]
    assert f"resuming the rollout of v{candidate} at step {before['progress']['step']}" in logs
    # Promoted, every decision recorded once: one advance per step, then one promote.
    assert final["status"] == "promoted", summary(final)
    times = [a["time"] for a in final["analyses"]]
    assert times == sorted(set(times))
    decided = [
        (a["step"], a["decision"]["action"]) for a in final["analyses"] if a["decision"]["action"] != "hold"
    ]
    assert decided == [(0, "advance"), (1, "advance"), (2, "advance"), (3, "promote")]
    # ... and counted once for the metrics, though two tries reported them.
    assert {k: v for k, v in decisions.items() if v and k != "hold"} == {"advance": 3, "promote": 1}
    assert serving == candidate  # promotion replaced the stable server
