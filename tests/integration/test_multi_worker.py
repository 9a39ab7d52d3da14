"""Two training workers as local processes, wired exactly as the Indexed Job's pods are.

Each process runs ``python -m slipway train --config-json ...`` with a ``TF_CONFIG`` naming both
workers on 127.0.0.1 ports (in the Job each pod derives it from ``JOB_COMPLETION_INDEX``; see
``tf_config_from_job``). ``MultiWorkerMirroredStrategy`` all-reduces every step, so the two
must finish with identical weights; only the chief writes the model and ``result.json``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from operators.launchers.base import config_json
from slipway.cli import RESULT_MARKER, run_step
from slipway.config import parse_config
from slipway.steps.context import RunContext
from slipway.training.distributed import tf_config_from_job

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_workers_train_one_model_together(tmp_path: Path) -> None:
    config = parse_config(
        {
            "name": "digits",
            "model_name": "digits",
            "store_url": f"file://{tmp_path / 'store'}",
            "data": {"source": {"kind": "digits", "scale": 16}, "input_shape": [8, 8], "num_classes": 10},
            "training": {
                "layers": [{"type": "flatten"}, {"type": "dense", "units": 32, "activation": "relu"}],
                "epochs": 2,
                "optimizer": {"name": "adam", "learning_rate": 0.01},
                "batch_size": 64,
                "steps_per_execution": 4,
            },
            "metrics": {"textfile_dir": str(tmp_path / "metrics")},
        }
    )
    run_id = "multi-worker"
    run_step("ingest", None, run_id, None, None, config_json=config_json(config))
    hosts = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_CONFIG")}
    env.update(PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1")
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "slipway",
                "train",
                "--config-json",
                config_json(config),
                "--run-id",
                run_id,
            ],
            env={
                **env,
                "TF_CONFIG": json.dumps(
                    {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}}
                ),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
        )
        for i in range(2)
    ]
    outputs = []
    try:
        for worker in workers:
            out, _ = worker.communicate(timeout=420)
            outputs.append(out)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert [w.returncode for w in workers] == [0, 0], "\n\n".join(o[-3000:] for o in outputs)

    chief = RunContext.create(config, run_id).train_result()
    assert chief.workers == 2 and chief.backend == "tensorflow"
    assert chief.epochs_completed == 2 and chief.final_metrics["val_accuracy"] > 0.5
    (worker_line,) = [line for line in outputs[1].splitlines() if line.startswith(RESULT_MARKER)]
    worker = json.loads(worker_line[len(RESULT_MARKER) :])
    assert worker["role"] == "worker"
    assert worker["weights_checksum"] == chief.weights_checksum  # one model, trained together
    assert "worker 1/2 trained" in outputs[1] and "worker 0/2 trained" in outputs[0]


def test_tf_config_from_the_indexed_job_environment() -> None:
    env = {
        "JOB_COMPLETION_INDEX": "1",
        "SLIPWAY_WORKERS": "3",
        "SLIPWAY_JOB_NAME": "slipway-digits-train-ab12",
        "SLIPWAY_JOB_SERVICE": "slipway-digits-train-ab12",
        "SLIPWAY_WORKER_PORT": "2222",
    }
    spec = json.loads(tf_config_from_job(env))
    assert spec["task"] == {"type": "worker", "index": 1}
    assert spec["cluster"]["worker"] == [
        f"slipway-digits-train-ab12-{i}.slipway-digits-train-ab12:2222" for i in range(3)
    ]
    assert tf_config_from_job({}) is None
