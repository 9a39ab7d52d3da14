"""A train step killed mid-run (SIGKILL, as a preempted node does) resumes from its checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from slipway.store import open_store

RUN = "preempted-run"


def test_killed_train_step_resumes_from_last_epoch(tmp_path: Path) -> None:
    config = {
        "name": "digits",
        "model_name": "digits",
        "store_url": f"file://{tmp_path / 'store'}",
        "data": {"source": {"kind": "digits", "scale": 16}, "input_shape": [8, 8], "num_classes": 10},
        "training": {
            "layers": [{"type": "flatten"}, {"type": "dense", "units": 32, "activation": "relu"}],
            "epochs": 40,
            "batch_size": 16,
        },
        "metrics": {"textfile_dir": str(tmp_path / "metrics")},
    }
    path = tmp_path / "digits.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}

    def step(name: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "slipway", name, "--config", str(path), "--run-id", RUN],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )

    assert step("ingest").wait(timeout=120) == 0
    store = open_store(config["store_url"])
    state_key = f"runs/digits/{RUN}/train/checkpoint/state.json"

    victim = step("train")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if store.exists(state_key) and store.get_json(state_key)["epoch"] >= 3:
            break
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    killed_at = store.get_json(state_key)["epoch"]
    assert 3 <= killed_at < 40, "the step finished before it could be killed"
    assert not store.exists(f"runs/digits/{RUN}/train/result.json")

    retry = step("train")
    output, _ = retry.communicate(timeout=300)
    assert retry.returncode == 0, output[-2000:]
    result = json.loads(output.strip().splitlines()[-1].removeprefix("SLIPWAY_RESULT "))
    assert result["resumed_from_epoch"] >= killed_at
    assert result["epochs_completed"] == 40
    assert len(result["history"]["loss"]) == 40  # the curves run through the preemption
    assert f"resuming from epoch {result['resumed_from_epoch']}" in output
