"""Local server processes: ``slipway serve`` for the canary, and for stable after promotion.

The canary runs in its own session (it outlives the task that started it, as a Deployment would)
and is found again by its pid in the rollout state. Promotion sends all traffic to the canary,
replaces the process listening on the stable port with the candidate version, then sends traffic
back to stable and stops the canary: no request meets a stopped server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import orjson

from slipway.rollout.routers import TrafficRouter
from slipway.rollout.targets import DeploymentTarget

log = logging.getLogger(__name__)


class TargetError(RuntimeError):
    pass


def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except OSError:
        return 0, b""


def listening_pids(port: int) -> list[int]:
    import psutil

    return sorted(
        {
            c.pid
            for c in psutil.net_connections(kind="tcp")
            if c.pid and c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
        }
    )


def _exited(pid: int) -> bool:
    """Gone, or a zombie whose parent (not us: e.g. the shell that started stable) has not reaped it."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def stop_pid(pid: int, wait_s: float = 15.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
        except ProcessLookupError:
            return
        if _exited(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _is_slipway_server(pid: int) -> bool:
    import psutil

    try:
        command = psutil.Process(pid).cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return "slipway" in command and "serve" in command


class LocalTarget(DeploymentTarget):
    def __init__(
        self,
        store_url: str,
        model: str,
        stable_url: str,
        canary_url: str,
        *,
        canary_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        ready_timeout_s: float = 180.0,
    ) -> None:
        self.store_url = store_url
        self.model = model
        self.urls = {"stable": stable_url.rstrip("/"), "canary": canary_url.rstrip("/")}
        self.canary_args = canary_args or []
        self.env = env or {}
        self.ready_timeout_s = ready_timeout_s

    def _port(self, variant: str) -> int:
        port = urlsplit(self.urls[variant]).port
        if port is None:
            raise TargetError(f"{variant} url {self.urls[variant]!r} needs an explicit port")
        return port

    def serving_version(self, variant: str) -> int | None:
        status, body = _get(f"{self.urls[variant]}/v1/models/{self.model}")
        if status != 200:
            return None
        return int(orjson.loads(body)["model_version_status"][0]["version"])

    def _start(self, variant: str, version: int, extra: list[str]) -> int:
        log_path = tempfile.mkstemp(prefix=f"slipway-{variant}-v{version}-", suffix=".log")[1]
        args = [
            sys.executable,
            "-m",
            "slipway",
            "serve",
            "--store-url",
            self.store_url,
            "--model",
            self.model,
            "--version",
            str(version),
            "--variant",
            variant,
            "--port",
            str(self._port(variant)),
            *extra,
        ]
        with open(log_path, "wb") as output:
            proc = subprocess.Popen(
                args,
                env={**os.environ, **self.env},
                # Not the task's stdin: under Airflow 3 that is the task's socket to its
                # supervisor, which would wait for the server to close it (60 s) after the task.
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.ready_timeout_s
        while _get(f"{self.urls[variant]}/readyz")[0] != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_pid(proc.pid)
                with open(log_path) as text:
                    tail = text.read()[-2000:]
                raise TargetError(f"{variant} server for v{version} did not get ready: {tail}")
            time.sleep(0.2)
        log.info(
            "%s server for %s v%s ready (pid %d, log %s)", variant, self.model, version, proc.pid, log_path
        )
        return proc.pid

    def deploy_canary(self, version: int) -> dict[str, Any]:
        if self.serving_version("canary") == version:  # a retry: the canary is already up
            return {"pid": (listening_pids(self._port("canary")) or [0])[0], "url": self.urls["canary"]}
        for pid in listening_pids(self._port("canary")):
            stop_pid(pid)  # a leftover canary of another version
        pid = self._start("canary", version, self.canary_args)
        return {"pid": pid, "url": self.urls["canary"], "version": version}

    def canary_ready(self, info: dict[str, Any]) -> bool:
        return _get(f"{self.urls['canary']}/readyz")[0] == 200

    def promote(self, version: int, info: dict[str, Any], router: TrafficRouter) -> None:
        if self.serving_version("stable") != version:
            router.set_canary_weight(100)
            for pid in listening_pids(self._port("stable")):
                stop_pid(pid)
            self._start("stable", version, [])
        router.set_canary_weight(0)
        self.remove_canary(info)

    def remove_canary(self, info: dict[str, Any]) -> None:
        pids = set(listening_pids(self._port("canary")))
        if info.get("pid") and _is_slipway_server(int(info["pid"])):  # the pid may be reused by now
            pids.add(int(info["pid"]))
        for pid in pids:
            stop_pid(pid)
