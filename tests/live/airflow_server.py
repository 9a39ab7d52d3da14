"""A real Airflow for live tests, started the way a newcomer starts it: ``make airflow``.

``make airflow`` runs ``airflow standalone``, which starts the API server, scheduler,
dag-processor and triggerer as subprocesses by the bare name ``airflow``. The shell that runs
``make`` here has only the system directories on ``PATH`` (no activated virtualenv), so a missing
venv ``bin/`` on the components' ``PATH`` shows up as components that never become healthy.

``airflow standalone`` can hang on stop, so every process of the tree is stopped by its own
process id, children first, with a bounded wait and SIGKILL for whatever is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSWORD = "slipway-live-test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ApiError(RuntimeError):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


@dataclass
class AirflowServer:
    """One ``make airflow`` process tree on a free port, with a small REST v2 client."""

    home: Path
    sql_alchemy_conn: str
    extra_env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    token: str = ""
    dags_folder: Path | None = None  # None: the repository's dags/ (the Makefile's setting)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.home / "make-airflow.log"

    def start(self, timeout_s: float = 300) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        # A known password for the standalone's generated admin user.
        (self.home / "simple_auth_manager_passwords.json.generated").write_text(
            json.dumps({"admin": PASSWORD})
        )
        make_vars = {
            # Command-line variables override the Makefile's own settings (local state in .airflow/).
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
            "AIRFLOW_PORT": str(self.port),
            "AIRFLOW__CORE__PARALLELISM": "2",
            "SLIPWAY_METRICS_DIR": str(self.home / "metrics"),
        }
        if self.dags_folder is not None:
            make_vars["AIRFLOW__CORE__DAGS_FOLDER"] = str(self.dags_folder)
        env = {
            "PATH": SYSTEM_PATH,  # no virtualenv: what `make airflow` from a fresh clone sees
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            # The checkout under test, ahead of whichever checkout the shared venv was installed from.
            "PYTHONPATH": str(REPO),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__SCHEDULER__MAX_TIS_PER_QUERY": "4",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": self.url,
            "GX_ANALYTICS_ENABLED": "False",
            **self.extra_env,
        }
        command = ["make", "-C", str(REPO), "-o", "install", "-o", "airflow-db", "airflow"]
        command += [f"{name}={value}" for name, value in make_vars.items()]
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            ["/bin/bash", "-c", 'exec "$@"', "bash", *command],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_healthy(timeout_s)
        self.token = self.login("admin", PASSWORD)

    # ------------------------------------------------------------------ readiness

    def health(self) -> dict[str, Any]:
        return self.request("GET", "/api/v2/monitor/health", auth=False)

    def wait_healthy(self, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"make airflow exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                last = self.health()
                components = ("metadatabase", "scheduler", "triggerer", "dag_processor")
                if all((last.get(c) or {}).get("status") == "healthy" for c in components):
                    return last
            except (OSError, ApiError) as exc:
                last = exc
            time.sleep(2)
        raise TimeoutError(f"Airflow not healthy after {timeout_s:.0f}s (last: {last}):\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # ------------------------------------------------------------------ REST v2

    def login(self, username: str, password: str) -> str:
        body = self.request("POST", "/auth/token", {"username": username, "password": password}, auth=False)
        return body["access_token"]

    def request(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode()
            try:
                detail: Any = json.loads(text)
            except ValueError:
                detail = text
            raise ApiError(exc.code, detail) from None
        return json.loads(text) if text else None

    def wait_for(self, what: str, check, timeout_s: float, every_s: float = 2) -> Any:
        """Poll ``check()`` until it returns something truthy.

        A request that times out or finds the server busy is polled again: on a loaded machine
        the API server (and SQLite behind it) can stall for a while without anything being wrong.
        """
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = check()
            except (OSError, ApiError) as exc:  # URLError and socket timeouts are OSErrors
                if isinstance(exc, ApiError) and exc.status < 500:
                    raise
                last, value = exc, None
            if value:
                return value
            time.sleep(every_s)
        raise TimeoutError(f"waited {timeout_s:.0f}s for {what} (last error: {last}):\n{self.log_tail()}")

    def wait_run_finished(self, dag_id: str, run_id: str, timeout_s: float) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            run = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            return run if run["state"] in ("success", "failed") else None

        return self.wait_for(f"run {run_id} to finish", finished, timeout_s, every_s=3)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        body = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti["state"] for ti in body["task_instances"]}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        return self.request("GET", path)["value"]

    # ------------------------------------------------------------------ stop

    def process_tree(self) -> list[int]:
        """Every process ``make`` started (children before their parents), then ``make`` itself.

        Standalone starts its components from threads, so the children of every thread are
        followed; anything else left in ``make``'s session (it was started in a new one) is added.
        """
        if self.process is None:
            return []
        order: list[int] = []

        def visit(pid: int) -> None:
            children: list[str] = []
            for task in Path(f"/proc/{pid}/task").glob("*"):
                with contextlib.suppress(OSError):
                    children += (task / "children").read_text().split()
            for child in dict.fromkeys(children):
                visit(int(child))
            if pid not in order:
                order.append(pid)

        visit(self.process.pid)
        in_session = [pid for pid in _session_members(self.process.pid) if pid not in order]
        return in_session + order

    def stop(self, grace_s: float = 20) -> list[int]:
        """SIGTERM each process by id (leaves first), wait at most ``grace_s``, SIGKILL the rest."""
        pids = self.process_tree()
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            if self.process is not None:
                self.process.poll()  # reap make
            time.sleep(0.2)
        for pid in pids:
            if _alive(pid):
                _signal(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10  # SIGKILL is not instant on a loaded machine
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.2)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        return [pid for pid in pids if _alive(pid)]


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _session_members(sid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # fields after the name: state, ppid, pgrp, session
            members.append(int(stat.parent.name))
    return members


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
