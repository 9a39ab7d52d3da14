"""End to end: the retraining DAG runs with ``dag.test()`` on small data, on the embedded defaults.

Every step runs for real (local subprocesses, file:// store, SQLite metadata DB): ingest a
partition of scikit-learn's digits, validate, train a small MLP, evaluate, gate, register, promote.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_digits

from slipway.registry import ModelRegistry
from slipway.steps.context import safe_run_id
from slipway.store import open_store

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def airflow_db() -> None:
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


def write_partitions(folder: Path) -> None:
    """``good.npz``: the digits scaled to [0, 1]; ``bad.npz``: the same with NaN pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")
    np.savez(folder / "good.npz", x=x, y=digits.target)
    broken = x.copy()
    broken[::7, 3, 4] = np.nan
    np.savez(folder / "bad.npz", x=broken, y=digits.target)


def write_pipeline(tmp_path: Path, **gate) -> Path:
    write_partitions(tmp_path / "data")
    config = {
        "name": "digits",
        "model_name": "digits",
        "owner": "tests",
        "store_url": f"file://{tmp_path / 'store'}",
        "data": {
            "source": {"kind": "npz", "uri": str(tmp_path / "data" / "{partition}.npz")},
            "split": {"validation_fraction": 0.1, "test_fraction": 0.25, "seed": 0},
            "input_shape": [8, 8],
            "num_classes": 10,
        },
        "training": {
            "layers": [{"type": "flatten"}, {"type": "dense", "units": 64, "activation": "relu"}],
            "optimizer": {"name": "adam", "learning_rate": 0.01},
            "epochs": 8,
            "batch_size": 64,
        },
        "gate": {"min_accuracy": 0.85, **gate},
        "metrics": {"textfile_dir": str(tmp_path / "metrics")},
    }
    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "digits.yaml").write_text(yaml.safe_dump(config))
    return folder


def run_dag(monkeypatch: pytest.MonkeyPatch, pipelines: Path, **conf):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("SLIPWAY_PIPELINES_DIR", str(pipelines))
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    run = bag.dags["retrain_digits"].test(run_conf={"partition": "good", **conf})
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    return run, states


def task_xcoms(run, task_id: str) -> dict:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id).all()
        return {row.key: _decoded(row.value) for row in rows}


def _decoded(value):
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value


def check_run_page_links_and_trigger(run) -> None:
    """Every task links the run page (train: its curves); the page's trigger facts come from the DB."""
    from urllib.parse import quote

    from airflow.utils.session import create_session

    from operators.artifacts_plugin import _trigger
    from operators.pipelines import pipeline_by_name

    page = f"/slipway/runs/digits/{quote(run.run_id, safe='')}"
    for task in ("ingest", "validate", "train", "evaluate", "gate", "register", "promote"):
        assert task_xcoms(run, task)["_link_RunPageLink"].endswith(page), task
    assert task_xcoms(run, "train")["_link_TrainingCurvesLink"].endswith(page + "#training")
    config = pipeline_by_name("digits")
    assert config is not None
    with create_session() as session:
        trigger = _trigger(session, config, run.run_id)
    assert trigger is not None and trigger.state == "success" and trigger.conf["partition"] == "good"
    assert {t.task_id for t in trigger.tasks} == {
        "ingest",
        "validate",
        "train",
        "evaluate",
        "gate",
        "register",
        "canary",
        "promote",
    }
    assert trigger.params["epochs"] == 8 and all(t.state == "success" for t in trigger.tasks)


def run_result(store, run, step: str) -> dict:
    return store.get_json(f"runs/digits/{safe_run_id(run.run_id)}/{step}/result.json")


def test_runs_register_promote_and_bad_data_changes_nothing(
    airflow_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipelines = write_pipeline(tmp_path)
    store = open_store(f"file://{tmp_path / 'store'}")
    registry = ModelRegistry(store, "digits")

    run, states = run_dag(monkeypatch, pipelines)
    assert str(run.state) == "success", states
    assert set(states.values()) == {"success"}, states
    assert registry.versions() == [1]
    assert registry.get_alias("champion") == 1 and registry.get_alias("candidate") == 1
    assert store.exists("registry/digits/1/saved_model.pb") and store.exists("registry/digits/1/model.keras")
    assert registry.read_attachment(1, "report.html").startswith(b"<!DOCTYPE html>")
    assert (tmp_path / "metrics" / "slipway_digits_train.prom").exists()
    check_run_page_links_and_trigger(run)
    validate_metrics = tmp_path / "metrics" / "slipway_digits_validate.prom"
    assert 'slipway_validation_success{pipeline="digits"} 1.0' in validate_metrics.read_text()

    # The second run trains version 2 and gates it against version 1 on the same test set.
    run, states = run_dag(monkeypatch, pipelines)
    assert set(states.values()) == {"success"}, states
    assert registry.versions() == [1, 2] and registry.get_alias("champion") == 2
    assert run_result(store, run, "evaluate")["champion"]["version"] == 1
    moves = registry.history("champion")
    assert [(m["from_version"], m["to_version"]) for m in moves] == [(None, 1), (1, 2)]
    assert all(m["actor"] and m["run_id"] and m["reason"] and m["at"] for m in moves)
    reference_before = store.get_bytes("references/digits/reference.json")

    # A partition with NaN pixels: validate fails without retry, nothing downstream runs.
    run, states = run_dag(monkeypatch, pipelines, partition="bad")
    assert str(run.state) == "failed"
    assert states["ingest"] == "success" and states["validate"] == "failed"
    assert {states[t] for t in ("train", "evaluate", "gate", "register", "promote")} == {"upstream_failed"}
    report = run_result(store, run, "validate")
    assert report["success"] is False
    # The failed task still links to the Data Docs that explain why.
    link = task_xcoms(run, "validate")["_link_DataDocsLink"]
    assert link.endswith(f"/runs/digits/{safe_run_id(run.run_id)}/validate/data_docs/index.html")
    assert registry.versions() == [1, 2] and registry.get_alias("champion") == 2
    assert store.get_bytes("references/digits/reference.json") == reference_before
    text = validate_metrics.read_text()
    assert 'slipway_validation_success{pipeline="digits"} 0.0' in text
    assert 'slipway_validation_failed_expectations{pipeline="digits"}' in text
    assert 'slipway_validation_drift{pipeline="digits",statistic="label_tv"}' in text


def test_rejection_skips_deployment_and_force_needs_reason(
    airflow_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipelines = write_pipeline(tmp_path, min_accuracy=0.999)
    store = open_store(f"file://{tmp_path / 'store'}")
    registry = ModelRegistry(store, "digits")

    run, states = run_dag(monkeypatch, pipelines)
    assert str(run.state) == "success", states  # a rejection is an outcome, not a failure
    assert states["gate"] == "success"
    assert states["register"] == "skipped" and states["promote"] == "skipped"
    assert registry.versions() == [] and registry.get_alias("champion") is None
    blessing = store.get_json(f"runs/digits/{safe_run_id(run.run_id)}/gate/blessing.json")
    assert blessing["blessed"] is False and blessing["result"] == "rejected"
    metrics_text = (tmp_path / "metrics" / "slipway_digits_gate.prom").read_text()
    assert (
        'slipway_gate_decisions_total{model="digits",pipeline="digits",result="rejected"} 1.0' in metrics_text
    )
    assert 'slipway_step_success{pipeline="digits",step="gate"} 1.0' in metrics_text
    # The rejected Blessing is still the gate's result, and its report button works.
    xcoms = task_xcoms(run, "gate")
    assert xcoms["return_value"]["blessed"] is False
    assert xcoms["_link_EvaluationReportLink"].endswith(
        f"/runs/digits/{safe_run_id(run.run_id)}/gate/report.html"
    )

    # Forcing without a written reason fails the run's first task, before any training, without
    # retry; nothing is registered.
    run, states = run_dag(monkeypatch, pipelines, force_deploy=True, force_reason="  ")
    assert states["ingest"] == "failed" and states["gate"] == "upstream_failed"
    assert registry.versions() == []

    # Forcing with a reason deploys, and the override is recorded in the Blessing and the history.
    run, states = run_dag(monkeypatch, pipelines, force_deploy=True, force_reason="hotfix for incident 42")
    assert set(states.values()) == {"success"}, states
    assert registry.get_alias("champion") == 1
    blessing = store.get_json(f"runs/digits/{safe_run_id(run.run_id)}/gate/blessing.json")
    assert blessing["forced"] is True and blessing["force_reason"] == "hotfix for incident 42"
    assert any("hotfix for incident 42" in m["reason"] for m in registry.history("champion"))
    assert any("hotfix for incident 42" in m["reason"] for m in registry.history("candidate"))
