"""Benchmark: Slipway's model server against the naive server a user writes first, same run.

Model: the reference Fashion-MNIST classifier (Flatten / Dense 512 relu / Dropout 0.2 / Dense 10
softmax), trained for one epoch on 10,000 training images (throughput does not depend on how well
it is trained), exported in the serving layout and registered in a temporary ``file://`` store.

Servers, one at a time on 127.0.0.1, each loaded by ``wrk -t2 -c16`` (2 threads, 16 connections):

* naive - Flask (threaded development server) with ``model.predict`` on every request, the
  first thing one writes;
* slipway - ``python -m slipway serve`` (checksum-verified load, NumPy forward pass,
  micro-batching, uvicorn + uvloop + httptools, one worker unless ``--workers``);
* slipway via router - the same server behind ``python -m slipway route`` (one backend, weight 100).

Payloads: one 28x28 instance (784 floats) per request, then 64 instances per request. Every server
is checked to answer the same classes for the payload first, then warmed up, then measured.
Reported: requests/s, instances/s, p50 and p99 latency (wrk's), non-2xx answers, and the peak RSS
of the server process (and of the router) during the run.

    .venv/bin/python bench/bench_serving.py [--duration 15] [--workers 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODEL = "fashion-mnist"
PATH = f"/v1/models/{MODEL}:predict"
FASHION = Path(os.environ.get("SLIPWAY_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))

NAIVE_SERVER = textwrap.dedent(
    """
    import sys
    import keras
    import numpy as np
    from flask import Flask, jsonify, request

    model = keras.saving.load_model(sys.argv[1])
    app = Flask(__name__)

    @app.post("/v1/models/fashion-mnist:predict")
    def predict():
        x = np.array(request.get_json()["instances"], dtype=np.float32)
        return jsonify({"predictions": model.predict(x, verbose=0).tolist()})

    @app.get("/healthz")
    def healthz():
        return "ok"

    app.run(host="127.0.0.1", port=int(sys.argv[2]), threaded=True)
    """
)

WRK_SCRIPT = textwrap.dedent(
    """
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
    wrk.body = f:read("*all")
    f:close()
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train_and_register(store_url: str, workdir: Path) -> tuple[Path, np.ndarray]:
    """Train the reference model briefly, export, register, alias champion; returns (export, test images)."""
    import keras

    from slipway.config import TrainingConfig
    from slipway.data.idx import read_idx
    from slipway.registry import ModelRegistry
    from slipway.store import open_store
    from slipway.training.models import build_model
    from slipway.training.trainer import export_model

    images = read_idx(FASHION / "train-images-idx3-ubyte.gz")[:10_000].astype(np.float32) / 255
    labels = read_idx(FASHION / "train-labels-idx1-ubyte.gz")[:10_000].astype(np.int64)
    test = read_idx(FASHION / "t10k-images-idx3-ubyte.gz")[:64].astype(np.float32) / 255
    keras.utils.set_random_seed(42)
    model = build_model(TrainingConfig(), (28, 28), 10)
    model.fit(images, labels, batch_size=128, epochs=1, verbose=0)
    local = export_model(model, workdir / "model", {"bench": True})
    store = open_store(store_url)
    store.upload_dir(local, "runs/bench/train/model")
    registry = ModelRegistry(store, MODEL)
    version = registry.register("runs/bench/train/model", {"bench": True}, run_id="bench")
    registry.set_alias("champion", version.number, actor="bench", run_id="bench", reason="benchmark")
    return local, test


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def predict(url: str, body: bytes) -> np.ndarray:
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return np.asarray(json.loads(answer.read())["predictions"], dtype=np.float32)


class PeakRss:
    """Samples the resident memory of some processes (and their children) while a run lasts."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> float:
        total = 0
        pids = list(self.pids)
        for pid in list(pids):
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                pids += [int(c) for c in children]
            except OSError:
                pass
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mib = max(self.peak_mib, self._rss())
            time.sleep(0.2)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_wrk(url: str, body_file: Path, duration: int, script: Path) -> dict[str, Any]:
    env = {**os.environ, "BENCH_BODY": str(body_file)}
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{duration}s", "--latency", "--timeout", "10s", "-s", str(script), url],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, flags=re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return {
        "requests_per_s": rps,
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "requests": total,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def start(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--workers", type=int, default=1, help="Slipway server processes")
    parser.add_argument("--json", default=None, help="write the results here too")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed (Debian package wrk; make install adds it)", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="slipway-bench-serving-"))
    store_url = (work / "store").as_uri()
    print("training and registering the reference model (1 epoch on 10,000 images)...", flush=True)
    export, test = train_and_register(store_url, work)
    script = work / "post.lua"
    script.write_text(WRK_SCRIPT)
    payloads = {}
    for n in (1, 64):
        body = work / f"body-{n}.json"
        body.write_bytes(json.dumps({"instances": test[:n].tolist()}).encode())
        payloads[n] = body
    print(
        f"payload bytes: 1 instance {payloads[1].stat().st_size}, 64 instances {payloads[64].stat().st_size}"
    )

    naive_port, slipway_port, router_port = free_port(), free_port(), free_port()
    (work / "naive.py").write_text(NAIVE_SERVER)
    python = sys.executable
    results: list[dict[str, Any]] = []
    expected = None

    def measure(name: str, url: str, pids: list[int]) -> None:
        nonlocal expected
        for n, body in payloads.items():
            answer = predict(url, body.read_bytes())
            classes = answer.argmax(axis=1)
            if n == 64:
                expected = classes if expected is None else expected
                assert (classes == expected).all(), f"{name} answers other classes than the first server"
            run_wrk(url, body, 3, script)  # warm-up
            with PeakRss(pids) as rss:
                figures = run_wrk(url, body, args.duration, script)
            row = {
                "server": name,
                "instances_per_request": n,
                **figures,
                "server_rss_mib": round(rss.peak_mib),
            }
            row["instances_per_s"] = round(figures["requests_per_s"] * n, 1)
            results.append(row)
            print(
                f"{name:<20} x{n:<3} {figures['requests_per_s']:>9.1f} req/s {row['instances_per_s']:>10.1f} inst/s"
                f"  p50 {figures['p50_ms']:>8.2f} ms  p99 {figures['p99_ms']:>8.2f} ms"
                f"  non-2xx {figures['non_2xx']}  RSS {row['server_rss_mib']} MiB",
                flush=True,
            )

    naive = start(
        [python, str(work / "naive.py"), str(export / "model.keras"), str(naive_port)], work / "naive.log"
    )
    try:
        wait_ready(f"http://127.0.0.1:{naive_port}/healthz", naive)
        measure("naive flask", f"http://127.0.0.1:{naive_port}{PATH}", [naive.pid])
    finally:
        stop(naive)

    server = start(
        [
            python, "-m", "slipway", "serve", "--store-url", store_url, "--model", MODEL,
            "--version", "champion", "--port", str(slipway_port), "--workers", str(args.workers),
        ],
        work / "serve.log",
        {"SLIPWAY_SERVING_CACHE": str(work / "cache")},
    )  # fmt: skip
    try:
        wait_ready(f"http://127.0.0.1:{slipway_port}/readyz", server)
        measure("slipway", f"http://127.0.0.1:{slipway_port}{PATH}", [server.pid])
        router = start(
            [
                python, "-m", "slipway", "route", "--port", str(router_port),
                "--backend", f"stable=http://127.0.0.1:{slipway_port}",
            ],
            work / "route.log",
        )  # fmt: skip
        try:
            wait_ready(f"http://127.0.0.1:{router_port}/readyz", router)
            measure("slipway via router", f"http://127.0.0.1:{router_port}{PATH}", [server.pid, router.pid])
        finally:
            stop(router)
        with urllib.request.urlopen(f"http://127.0.0.1:{slipway_port}/metrics") as answer:
            scraped = answer.read().decode()
        batches = re.search(r"slipway_serving_batch_size_count\{[^}]*\} ([\d.e+]+)", scraped)
        instances = re.search(r"slipway_serving_batch_size_sum\{[^}]*\} ([\d.e+]+)", scraped)
        if batches and instances:
            print(
                f"slipway mean micro-batch: {float(instances.group(1)) / float(batches.group(1)):.1f} instances"
            )
    finally:
        stop(server)

    base = {r["instances_per_request"]: r["requests_per_s"] for r in results if r["server"] == "naive flask"}
    print(
        "\n| server | instances/request | requests/s | instances/s | p50 ms | p99 ms | non-2xx | server RSS MiB | vs naive |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        ratio = r["requests_per_s"] / max(base[r["instances_per_request"]], 1e-9)
        print(
            f"| {r['server']} | {r['instances_per_request']} | {r['requests_per_s']:.1f} | {r['instances_per_s']:.1f}"
            f" | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['non_2xx']} | {r['server_rss_mib']} | {ratio:.1f}x |"
        )
    print(f"\nmachine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
