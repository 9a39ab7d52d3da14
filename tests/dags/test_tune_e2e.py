"""End to end: the tuning DAG on digits with ``dag.test()`` - mapped trials, pruning, the best trial
evaluated, gated, made leaner and registered with the study it came from.

Every step runs for real through the local launcher (one process per trial), on a file:// store.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from slipway.registry import ModelRegistry
from slipway.steps.context import safe_run_id
from slipway.store import open_store
from tests.dags.test_retrain_e2e import task_xcoms

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def airflow_db() -> None:
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


def write_pipeline(tmp_path: Path) -> Path:
    config = {
        "name": "digits",
        "model_name": "digits",
        "owner": "tests",
        "store_url": f"file://{tmp_path / 'store'}",
        "data": {
            "source": {"kind": "digits", "scale": 16},
            "split": {"validation_fraction": 0.15, "test_fraction": 0.25, "seed": 0},
            "input_shape": [8, 8],
            "num_classes": 10,
        },
        "gate": {"min_accuracy": 0.5},
        "metrics": {"textfile_dir": str(tmp_path / "metrics")},
        "tuning": {
            "trials": 4,
            "parallel": 2,
            "seed": 0,
            "startup_trials": 2,
            "space": {
                "conv_blocks": [0, 1],
                "conv_filters": 8,
                "dense_layers": 1,
                "dense_units": [16, 32, 64],
                "dropout": 0.0,
                "optimizer": ["adam", "sgd"],
                "learning_rate": {"low": 0.0001, "high": 0.05, "log": True},
                "batch_size": 32,
                "epochs": 3,
            },
            "pruner": {"kind": "median", "startup_trials": 1, "warmup_epochs": 0},
            "leaner": {"enabled": True, "min_size_ratio": 1.0, "max_accuracy_drop": 0.02},
        },
    }
    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "digits.yaml").write_text(yaml.safe_dump(config))
    return folder


def test_sweep_maps_trials_prunes_and_registers_the_best(
    airflow_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    pipelines = write_pipeline(tmp_path)
    monkeypatch.setenv("SLIPWAY_PIPELINES_DIR", str(pipelines))
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    run = bag.dags["tune_digits"].test()
    tis = run.get_task_instances()
    states = {(ti.task_id, ti.map_index): str(ti.state) for ti in tis}
    assert str(run.state) == "success", states

    # One mapped task instance per trial slot, each a launcher process.
    assert sorted(i for (task, i) in states if task == "trial") == [0, 1, 2, 3]
    store = open_store(f"file://{tmp_path / 'store'}")
    prefix = f"runs/digits/{safe_run_id(run.run_id)}"
    index = store.get_json(f"{prefix}/tune/study/study.json")
    trial_states = [index["trials"][str(n)]["state"] for n in range(4)]
    assert "pruned" in trial_states and "complete" in trial_states, index
    assert all(index["trials"][str(n)]["attempts"] == 1 for n in range(4))

    # The best complete trial (validation accuracy) became the candidate and was registered.
    selected = store.get_json(f"{prefix}/tune-select/result.json")
    best = max(
        (n for n in range(4) if trial_states[n] == "complete"), key=lambda n: index["trials"][str(n)]["value"]
    )
    assert selected["trial"] == best
    study_id = selected["study_id"]
    blessing = store.get_json(f"{prefix}/gate/blessing.json")
    assert blessing["blessed"] and blessing["origin"]["kind"] == "sweep"
    assert blessing["origin"]["study_id"] == study_id and blessing["origin"]["trial"] == best
    registry = ModelRegistry(store, "digits")
    assert registry.versions() == [1] and registry.get_alias("champion") == 1
    metadata = registry.get_version(1).metadata
    assert metadata["origin"]["study_id"] == study_id
    assert metadata["optimization"]["replaces_float"] in (True, False)

    # The leaner variant was scored against the float model on the same test examples.
    optimized = store.get_json(f"{prefix}/optimize/result.json")
    assert optimized["test_rows"] == store.get_json(f"{prefix}/evaluate/result.json")["test_rows"]
    assert abs(optimized["leaner"]["accuracy"] - optimized["float"]["accuracy"]) <= 0.05
    assert optimized["leaner"]["size"]["weight_bytes"] < optimized["float"]["size"]["weight_bytes"]

    # The select task links to the sweep's report.
    link = task_xcoms(run, "select")["_link_TuningReportLink"]
    assert link.endswith(f"/{prefix}/tune/report.html")
    assert "Parameter importances" in store.get_bytes(f"{prefix}/tune/report.html").decode()
