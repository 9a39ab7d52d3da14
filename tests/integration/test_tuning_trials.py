"""Sweep trials as real processes: SIGKILLed, retried, crashed, restarted - no trial lost or counted twice.

Each trial runs as ``python -m slipway tune-trial`` (what the launcher starts, locally or in a
pod) against a file:// store; the only shared state is the store's conditional writes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from slipway.cli import run_step
from slipway.config import load_config
from slipway.steps.context import RunContext
from slipway.steps.tune_trial import study_for, study_id_for
from slipway.store import open_store

REPO = Path(__file__).resolve().parents[2]
RUN = "sweep-1"

pytestmark = pytest.mark.slow


def write_config(tmp_path: Path) -> Path:
    config = {
        "name": "digits",
        "model_name": "digits",
        "store_url": f"file://{tmp_path / 'store'}",
        "data": {
            "source": {"kind": "digits", "scale": 16},
            "split": {"validation_fraction": 0.15, "test_fraction": 0.25, "seed": 0},
            "input_shape": [8, 8],
            "num_classes": 10,
        },
        "metrics": {"textfile_dir": str(tmp_path / "metrics")},
        "tuning": {
            "trials": 2,
            "seed": 3,
            "pruner": {"kind": "none"},
            "space": {
                "dense_layers": 1,
                "dense_units": [32, 64],
                "dropout": 0.0,
                "learning_rate": {"low": 0.003, "high": 0.01, "log": True},
                "batch_size": 16,
                "epochs": 30,
            },
        },
    }
    path = tmp_path / "digits.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def trial_command(config: Path, number: int) -> list[str]:
    args = ["tune-trial", "--config", str(config), "--run-id", RUN, "--trial", str(number)]
    return [sys.executable, "-m", "slipway", *args]


def run_cli(*command: str) -> tuple[int, dict | None, str]:
    proc = subprocess.run(list(command), capture_output=True, text=True, cwd=REPO, env=_env(), timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("SLIPWAY_RESULT ")]
    result = json.loads(lines[-1][len("SLIPWAY_RESULT ") :]) if lines else None
    return proc.returncode, result, proc.stdout + proc.stderr


def kill_after_epochs(config: Path, number: int, progress_key: str, store, epochs: int = 2) -> None:
    """Start the trial and SIGKILL it once it has recorded ``epochs`` epochs (mid-training)."""
    proc = subprocess.Popen(
        trial_command(config, number),
        cwd=REPO,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            if store.exists(progress_key) and store.get_json(progress_key)["epoch"] >= epochs:
                break
            assert proc.poll() is None, "the trial ended before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("the trial never reported its epochs")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def test_killed_and_crashed_trials_are_retried_counted_once_and_the_study_resumes(tmp_path: Path) -> None:
    config_path = write_config(tmp_path)
    config = load_config(config_path)
    store = open_store(config.store_url)
    run_step("ingest", str(config_path), RUN, None, None)
    ctx = RunContext.create(config, RUN)
    study = study_for(ctx)
    study.create(config, study_id_for(ctx))

    # Trial 0 is SIGKILLed mid-training; the retry keeps its params and resumes its checkpoint.
    kill_after_epochs(config_path, 0, study.trial_key(0, "progress.json"), store)
    claimed = study.read_claim(0)
    assert claimed is not None and study.read_result(0) is None
    assert study.read_index()["trials"]["0"] == {"state": "running", "attempts": 1}
    code, result, log = run_cli(*trial_command(config_path, 0))
    assert code == 0, log
    assert result["state"] == "complete" and result["params"] == claimed["params"]
    assert result["attempt"] == 2 and result["resumed_from_epoch"] >= 2
    assert sorted(int(k) for k in result["intermediate_values"]) == list(range(1, 31))  # one continuous curve
    # A duplicate of the finished task (a retry after success) changes nothing and trains nothing.
    code, again, log = run_cli(*trial_command(config_path, 0))
    assert code == 0 and again == result, log
    assert study.read_index()["trials"]["0"]["attempts"] == 2

    # Trial 1 is killed, then its checkpoint is found corrupt: the retry crashes and says why.
    kill_after_epochs(config_path, 1, study.trial_key(1, "progress.json"), store)
    checkpoint = store.get_json(study.trial_key(1, "checkpoint/state.json"))
    store.put_bytes(study.trial_key(1, f"checkpoint/{checkpoint['file']}"), b"not a keras file")
    code, _, log = run_cli(*trial_command(config_path, 1))
    assert code != 0, log
    (crash,) = study.crashes(1)
    assert crash["attempt"] == 2 and "Traceback" in crash["error"]

    # The setup task restarted: the same study, nothing reset.
    before = study.read_index()
    assert study.create(config, study_id_for(ctx)) == before

    # Select closes the study: the crashed slot is failed (not lost), the complete one is the candidate.
    code, selected, log = run_cli(
        sys.executable, "-m", "slipway", "tune-select", "--config", str(config_path), "--run-id", RUN
    )
    assert code == 0, log
    assert selected["trials"] == {"complete": 1, "failed": 1}
    assert selected["trial"] == 0 and selected["study_id"] == "digits-sweep-1"
    index = study.read_index()
    assert index["finalized"] and index["trials"]["1"]["state"] == "failed"
    assert "Error" in index["trials"]["1"]["error"]
    train = ctx.train_result()
    assert train.sweep is not None and train.sweep.study_id == "digits-sweep-1" and train.sweep.trial == 0
    assert store.exists(f"{train.model_key}/saved_model.pb")
    report = store.get_bytes(selected["report_key"]).decode()
    assert "Optimisation history" in report and report.count("data:image/png;base64") >= 2
    # A late retry of the failed slot after the study closed does not flip the record.
    code, late, log = run_cli(*trial_command(config_path, 1))
    assert code == 0 and late["state"] == "failed", log
    assert study.read_result(1) is None
