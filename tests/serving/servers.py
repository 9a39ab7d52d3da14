"""Real server processes for the serving tests: a registered tiny model, ``slipway serve`` and
``slipway route`` on free ports of 127.0.0.1, stopped when the test module ends."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def register_tiny_model(store_url: str, model: str = "digits", seed: int = 7) -> Path:
    """An MLP on 8x8 inputs (the reference layers), exported, registered and aliased champion.
    Returns a local copy of the exported folder (for comparing with the SavedModel)."""
    import keras

    from slipway.config import TrainingConfig
    from slipway.registry import ModelRegistry
    from slipway.store import open_store
    from slipway.training.models import build_model
    from slipway.training.trainer import export_model

    keras.utils.set_random_seed(seed)
    network = build_model(TrainingConfig(), (8, 8), 10)
    network.set_weights([w * 3 for w in network.get_weights()])  # peaked softmax
    local = export_model(network, Path(tempfile.mkdtemp(prefix="slipway-model-")) / "model", {"seed": seed})
    store = open_store(store_url)
    store.upload_dir(local, f"runs/r{seed}/train/model")
    registry = ModelRegistry(store, model)
    version = registry.register(f"runs/r{seed}/train/model", {"seed": seed}, run_id=f"r{seed}")
    registry.set_alias("champion", version.number, actor="test", run_id=f"r{seed}", reason="test")
    return local


def get(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def send(
    url: str, body: bytes, method: str = "POST", headers: dict[str, str] | None = None, timeout: float = 10.0
) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(
        url, data=body, method=method, headers={"content-type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read(), dict(answer.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


@contextmanager
def process(
    args: list[str], ready_url: str, env: dict[str, str] | None = None, wait_s: float = 240
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``python -m slipway ARGS`` from the repository root; yield once ``ready_url`` is 200."""
    log = Path(tempfile.mkstemp(prefix="slipway-proc-", suffix=".log")[1])
    output = log.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "slipway", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + wait_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{args[0]} exited with {proc.returncode}: {log.read_text()[-3000:]}")
            try:
                if get(ready_url, timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{args[0]} not ready after {wait_s} s: {log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        output.close()
