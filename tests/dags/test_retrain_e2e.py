"""End to end: the retraining DAG runs with ``dag.test()`` on small data, on the embedded defaults.

Every step runs for real (local subprocesses, file:// store, SQLite metadata DB): ingest sklearn
digits, validate, train a small MLP, evaluate, gate, register, promote.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from slipway.registry import ModelRegistry
from slipway.store import open_store

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def airflow_db() -> None:
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


def write_pipeline(folder: Path, store: Path, **gate) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "name": "digits",
        "model_name": "digits",
        "store_url": f"file://{store}",
        "data": {
            "source": {"kind": "digits", "scale": 16},
            "split": {"validation_fraction": 0.1, "test_fraction": 0.25, "seed": 0},
            "input_shape": [8, 8],
            "num_classes": 10,
        },
        "validation": {"min_rows": 100},
        "training": {
            "layers": [{"type": "flatten"}, {"type": "dense", "units": 64, "activation": "relu"}],
            "optimizer": {"name": "adam", "learning_rate": 0.01},
            "epochs": 8,
            "batch_size": 64,
        },
        "gate": {"min_accuracy": 0.85, **gate},
    }
    path = folder / "digits.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_dag(monkeypatch: pytest.MonkeyPatch, pipelines: Path, conf: dict | None = None):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("SLIPWAY_PIPELINES_DIR", str(pipelines))
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    dag = bag.dags["retrain_digits"]
    run = dag.test(run_conf=conf)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    return run, states


def test_two_runs_register_and_promote(airflow_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store_dir = tmp_path / "store"
    write_pipeline(tmp_path / "pipelines", store_dir)

    run, states = run_dag(monkeypatch, tmp_path / "pipelines")
    assert str(run.state) == "success", states
    assert set(states.values()) == {"success"}, states

    store = open_store(f"file://{store_dir}")
    registry = ModelRegistry(store, "digits")
    assert registry.versions() == [1]
    assert registry.get_alias("champion") == 1
    assert registry.get_alias("candidate") == 1
    assert store.exists("registry/digits/1/saved_model.pb")
    assert store.exists("registry/digits/1/model.keras")

    # The second run trains version 2 and gates it against version 1 on the same test set.
    run, states = run_dag(monkeypatch, tmp_path / "pipelines")
    assert set(states.values()) == {"success"}, states
    assert registry.versions() == [1, 2]
    assert registry.get_alias("champion") == 2
    evaluation = store.get_json(f"runs/digits/{_safe(run.run_id)}/evaluate/result.json")
    assert evaluation["champion"]["version"] == 1
    moves = [h for h in registry.history("champion")]
    assert [(m["from_version"], m["to_version"]) for m in moves] == [(None, 1), (1, 2)]


def test_rejected_candidate_skips_deployment(
    airflow_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_dir = tmp_path / "store"
    write_pipeline(tmp_path / "pipelines", store_dir, min_accuracy=0.999)
    run, states = run_dag(monkeypatch, tmp_path / "pipelines")
    assert str(run.state) == "success", states  # a rejection is an outcome, not a failure
    assert states["gate"] == "success"
    assert states["register"] == "skipped" and states["promote"] == "skipped"
    registry = ModelRegistry(open_store(f"file://{store_dir}"), "digits")
    assert registry.versions() == [] and registry.get_alias("champion") is None
    blessing = open_store(f"file://{store_dir}").get_json(
        f"runs/digits/{_safe(run.run_id)}/gate/blessing.json"
    )
    assert blessing["blessed"] is False


def _safe(run_id: str) -> str:
    from slipway.steps.context import safe_run_id

    return safe_run_id(run_id)
