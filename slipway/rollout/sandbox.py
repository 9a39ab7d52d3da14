"""A local canary sandbox for the demo and the tests: tiny digits models trained and registered,
a stable ``slipway serve``, the ``slipway route`` router in front of stable and canary ports, and
(optionally) a real Prometheus scraping them, all on free ports of 127.0.0.1 and stopped when
the ``running()`` block ends. Not used by the pipeline itself."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from slipway.config import RolloutConfig
from slipway.rollout.controller import Rollout
from slipway.rollout.providers import MetricsProvider
from slipway.rollout.providers.prometheus import PrometheusProvider
from slipway.rollout.providers.scrape import ScrapeProvider
from slipway.rollout.routers.local import LocalRouter
from slipway.rollout.targets.local import LocalTarget, listening_pids, stop_pid
from slipway.store import open_store

MODEL = "digits"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@contextmanager
def process(
    args: list[str], ready_url: str, env: dict[str, str] | None = None, wait_s: float = 240
) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m slipway ARGS``, yielded once ``ready_url`` answers 200; stopped on exit."""
    log = Path(tempfile.mkstemp(prefix="slipway-proc-", suffix=".log")[1])
    with log.open("wb") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "slipway", *args],
            env={**os.environ, **(env or {})},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + wait_s
            while _status(ready_url) != 200:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{args[0]} did not get ready: {log.read_text()[-3000:]}")
                time.sleep(0.2)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.images / 16.0).astype(np.float32), data.target.astype(np.int64)


def train_and_register(
    store_url: str, seed: int, relabel: Callable[[np.ndarray], np.ndarray] | None = None
) -> int:
    """A small MLP fitted on digits (labels optionally rewritten), registered; its version."""
    import keras

    from slipway.config import TrainingConfig
    from slipway.registry import ModelRegistry
    from slipway.training.models import build_model
    from slipway.training.trainer import export_model

    keras.utils.set_random_seed(seed)
    x, y = digits()
    y = relabel(y) if relabel else y
    training = TrainingConfig.model_validate(
        {"layers": [{"type": "flatten"}, {"type": "dense", "units": 32, "activation": "relu"}]}
    )
    network = build_model(training, (8, 8), 10)
    network.fit(x[:1400], y[:1400], epochs=10, batch_size=64, verbose=0)
    local = export_model(network, Path(tempfile.mkdtemp(prefix="slipway-model-")) / "model", {"seed": seed})
    store = open_store(store_url)
    store.upload_dir(local, f"runs/s{seed}/train/model")
    return (
        ModelRegistry(store, MODEL)
        .register(f"runs/s{seed}/train/model", {"seed": seed}, run_id=f"s{seed}")
        .number
    )


@contextmanager
def prometheus(targets: list[str], root: Path) -> Iterator[str]:
    port = free_port()
    config = root / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 900ms}\n"
        "scrape_configs:\n"
        "  - job_name: slipway\n"
        f"    static_configs: [{{targets: [{', '.join(repr(t) for t in targets)}]}}]\n"
    )
    log = (root / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={root / 'tsdb'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while _status(f"{url}/-/ready") != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"prometheus did not start: {(root / 'prometheus.log').read_text()[-2000:]}"
                )
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


def _status(url: str) -> int:
    try:
        return get(url, timeout=2)[0]
    except OSError:
        return 0


class Sandbox:
    """One stable server, a router in front of it and a canary port; rollouts against them."""

    def __init__(self, root: Path, store_url: str, stable_version: int) -> None:
        self.root = root
        self.store_url = store_url
        self.ports = {"stable": free_port(), "canary": free_port(), "router": free_port()}
        self.urls = {k: f"http://127.0.0.1:{p}" for k, p in self.ports.items()}
        self.env = {"SLIPWAY_SERVING_CACHE": str(root / "cache")}
        self.stable_version = stable_version
        self.prometheus_url: str | None = None
        self.x, self.y = digits()

    @contextmanager
    def running(self, with_prometheus: bool = True) -> Iterator[Sandbox]:
        os.environ.update(self.env)
        serve = ["serve", "--store-url", self.store_url, "--model", MODEL, "--variant", "stable"]
        serve += ["--version", str(self.stable_version), "--port", str(self.ports["stable"])]
        route = [
            "route",
            "--backend",
            f"stable={self.urls['stable']}",
            "--backend",
            f"canary={self.urls['canary']}",
        ]
        route += ["--weights", "stable=100,canary=0", "--port", str(self.ports["router"])]
        try:
            with ExitStack() as stack:
                stack.enter_context(process(serve, f"{self.urls['stable']}/readyz", self.env))
                stack.enter_context(process(route, f"{self.urls['router']}/readyz", self.env))
                if with_prometheus:
                    targets = [u.removeprefix("http://") for u in self.urls.values()]
                    self.prometheus_url = stack.enter_context(prometheus(targets, self.root))
                yield self
        finally:
            for port in (self.ports["stable"], self.ports["canary"]):  # servers a target (re)started
                for pid in listening_pids(port):
                    stop_pid(pid)

    def provider(self, kind: str) -> MetricsProvider:
        if kind == "prometheus":
            assert self.prometheus_url
            return PrometheusProvider(MODEL, self.prometheus_url)
        return ScrapeProvider(MODEL, {"stable": self.urls["stable"], "canary": self.urls["canary"]})

    def rollout(
        self,
        name: str,
        policy: RolloutConfig,
        *,
        provider: str = "prometheus",
        canary_args: list[str] | None = None,
    ) -> Rollout:
        target = LocalTarget(
            self.store_url,
            MODEL,
            self.urls["stable"],
            self.urls["canary"],
            canary_args=canary_args,
            env=self.env,
        )
        return Rollout(
            open_store(self.store_url),
            f"rollouts/{name}/state.json",
            policy,
            model=MODEL,
            provider=self.provider(provider),
            router=LocalRouter(self.urls["router"]),
            target=target,
        )


def figures(state: dict[str, Any], traffic: dict[str, Any]) -> dict[str, Any]:
    """What the issue asks to report for one rollout.

    ``exposed_share`` is the canary's share of all requests the servers answered from the moment
    it got traffic to the last analysis (from the analysed windows); ``client_share`` counts from
    the replayer's start (it includes the canary's deployment time).
    """
    analyses = state["analyses"]
    windows = [a["window"] for a in analyses if a["window"]]
    canary = sum(sum(w["canary"]["requests"].values()) for w in windows)
    stable = sum(sum(w["stable"]["requests"].values()) for w in windows)
    return {
        "status": state["status"],
        "reason": state["reason"],
        "intervals": len(analyses),
        "canary_requests_analysed": canary,
        "all_requests_analysed": canary + stable,
        "exposed_share": canary / (canary + stable) if canary + stable else 0.0,
        "client_canary_requests": traffic["by_backend"].get("canary", 0),
        "client_requests": traffic["total"],
        "client_share": traffic["canary_share"],
        "seconds_with_traffic": state["finished"] - state.get("traffic_started", state["started"]),
        "seconds_total": state["finished"] - state["started"],
    }
