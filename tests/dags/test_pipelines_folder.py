"""The pipeline configs folder is found from the DAG file (or ``SLIPWAY_PIPELINES_DIR``), never
from the installed package; a missing or empty folder is an import error, not zero DAGs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PIPELINE = (
    "name: elsewhere\nmodel_name: elsewhere\nstore_url: file://./store\n"
    "data: {source: {kind: digits}, input_shape: [8, 8], num_classes: 10}\n"
)


def _dag_folder(tmp_path: Path, pipelines: dict[str, str] | None) -> Path:
    """A copy of the DAG file in a folder of its own, as in an Airflow image's DAGs folder."""
    folder = tmp_path / "airflow-dags"
    folder.mkdir()
    shutil.copy(REPO / "dags" / "retrain.py", folder / "retrain.py")
    if pipelines is not None:
        (folder / "pipelines").mkdir()
        for name, text in pipelines.items():
            (folder / "pipelines" / name).write_text(text)
    return folder


def _bag(folder: Path):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(folder))


def test_configs_come_from_beside_the_dag_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLIPWAY_PIPELINES_DIR", raising=False)
    bag = _bag(_dag_folder(tmp_path, {"elsewhere.yaml": PIPELINE}))
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == ["retrain_elsewhere"]  # not the repository's fashion_mnist


def test_env_var_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "p.yml").write_text(PIPELINE.replace("elsewhere", "from_env"))
    monkeypatch.setenv("SLIPWAY_PIPELINES_DIR", str(configs))
    bag = _bag(_dag_folder(tmp_path, {"elsewhere.yaml": PIPELINE}))
    assert sorted(bag.dag_ids) == ["retrain_from_env"]


@pytest.mark.parametrize(
    ("pipelines", "message"),
    [(None, "does not exist"), ({"README.md": "# none"}, "holds no *.yaml or *.yml file")],
)
def test_missing_or_empty_folder_is_an_import_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pipelines: dict[str, str] | None, message: str
) -> None:
    monkeypatch.delenv("SLIPWAY_PIPELINES_DIR", raising=False)
    folder = _dag_folder(tmp_path, pipelines)
    bag = _bag(folder)
    assert bag.dag_ids == []
    (error,) = bag.import_errors.values()
    assert message in error and str(folder / "pipelines") in error and "SLIPWAY_PIPELINES_DIR" in error


def test_api_server_without_dag_file_uses_the_dags_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from operators.pipelines import pipeline_by_name, pipelines_dir

    monkeypatch.delenv("SLIPWAY_PIPELINES_DIR", raising=False)
    folder = _dag_folder(tmp_path, {"elsewhere.yaml": PIPELINE})
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(folder))
    assert pipelines_dir() == folder / "pipelines"
    found = pipeline_by_name("elsewhere")
    assert found is not None and found.model_name == "elsewhere"
