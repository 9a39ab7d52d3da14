"""DagBag: the shipped DAG files import cleanly and every DAG follows the project's rules."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def dagbag(monkeypatch: pytest.MonkeyPatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.delenv("SLIPWAY_PIPELINES_DIR", raising=False)
    return DagBag(dag_folder=str(REPO / "dags"))


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


def test_one_dag_per_pipeline(dagbag) -> None:
    assert sorted(dagbag.dag_ids) == ["retrain_fashion_mnist", "tune_fashion_mnist"]


def test_dag_rules(dagbag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.max_active_runs == 1
        assert dag.doc_md
        for task in dag.tasks:
            assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id} has no owner"


def test_task_order(dagbag) -> None:
    dag = dagbag.dags["retrain_fashion_mnist"]
    order = ["ingest", "validate", "train", "evaluate", "gate", "register", "canary", "promote"]
    for upstream, downstream in itertools.pairwise(order):
        assert downstream in dag.get_task(upstream).downstream_task_ids


def test_params_form(dagbag) -> None:
    params = dagbag.dags["retrain_fashion_mnist"].params
    assert params["epochs"] == 10 and params["batch_size"] == 128
    assert params["learning_rate"] == pytest.approx(1e-3)
    assert params["force_deploy"] is False
    assert params["skip_canary"] is False
    for name in ("partition", "force_reason", "skip_canary_reason"):
        assert name in params


def test_bad_config_gives_one_clear_import_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    (tmp_path / "broken.yaml").write_text(
        "name: broken\nmodel_name: m\nstore_url: file:///tmp/s\n"
        "data: {source: {kind: digits}, input_shape: [8, 8], num_classes: 10}\n"
        "training: {epochs: -3}\n"
    )
    monkeypatch.setenv("SLIPWAY_PIPELINES_DIR", str(tmp_path))
    bag = DagBag(dag_folder=str(REPO / "dags"))
    (message,) = bag.import_errors.values()
    assert "broken.yaml" in message
    assert "training.epochs" in message and "greater than 0" in message
    assert message.count("Traceback") <= 1


def test_extra_links_per_task(dagbag) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    serialized = DagSerialization.to_dict(dagbag.dags["retrain_fashion_mnist"])
    links = {
        t["__var"]["task_id"]: t["__var"].get("_operator_extra_links") for t in serialized["dag"]["tasks"]
    }
    assert links["validate"] == {"Data Docs": "_link_DataDocsLink", "Run page": "_link_RunPageLink"}
    assert links["evaluate"] == {
        "Evaluation report": "_link_EvaluationReportLink",
        "Run page": "_link_RunPageLink",
    }
    assert "Evaluation report" in links["gate"] and "Model metadata" in links["register"]
    # every task opens the run page; the train task's own button opens its curves, not raw JSON
    assert all(task_links.get("Run page") == "_link_RunPageLink" for task_links in links.values()), links
    assert links["train"]["Training curves"] == "_link_TrainingCurvesLink"
    assert "Model page" in links["register"] and "Model page" in links["promote"]


def test_tuning_dag_maps_trials_and_links_its_report(dagbag) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    dag = dagbag.dags["tune_fashion_mnist"]
    order = ["ingest", "validate", "study", "trial", "select", "evaluate", "gate", "optimize", "register"]
    for upstream, downstream in itertools.pairwise(order):
        assert downstream in dag.get_task(upstream).downstream_task_ids
    trial = dag.get_task("trial")
    assert trial.max_active_tis_per_dagrun == 2  # tuning.parallel
    assert dag.get_task("select").trigger_rule == "all_done_min_one_success"
    serialized = DagSerialization.to_dict(dag)
    links = {
        t["__var"]["task_id"]: t["__var"].get("_operator_extra_links") for t in serialized["dag"]["tasks"]
    }
    assert links["select"] == {"Tuning report": "_link_TuningReportLink", "Run page": "_link_RunPageLink"}
