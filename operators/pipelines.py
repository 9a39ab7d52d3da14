"""Where the pipeline configs live, for the DAG file and the artifacts plugin alike.

The folder is ``SLIPWAY_PIPELINES_DIR`` when set, else ``pipelines/`` beside the DAG file that
asks (``dags/pipelines`` in this repository), else ``pipelines/`` in Airflow's DAGs folder (the
API server has no DAG file of its own). Never the installed package's location: in the Airflow
image Slipway lives in site-packages and the DAGs elsewhere, which once yielded zero DAGs and no
error. A missing folder or one without a pipeline is a ``ConfigError`` - an import error in the
UI, not silence.
"""

from __future__ import annotations

import os
from pathlib import Path

from slipway.config import ConfigError, PipelineConfig, load_pipelines

ENV_VAR = "SLIPWAY_PIPELINES_DIR"
FOLDER_NAME = "pipelines"


def pipelines_dir(dag_file: str | os.PathLike[str] | None = None) -> Path:
    """The pipeline configs folder for ``dag_file`` (see the module docstring for the order)."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured)
    if dag_file is not None:
        return Path(dag_file).resolve().parent / FOLDER_NAME
    from airflow.configuration import conf

    return Path(conf.get("core", "dags_folder")) / FOLDER_NAME


def load_pipeline_folder(folder: Path) -> list[PipelineConfig]:
    """Every pipeline in ``folder``; ``ConfigError`` if the folder is missing or holds none."""
    hint = f"set {ENV_VAR} or put pipeline YAML files in {folder}"
    if not folder.is_dir():
        raise ConfigError(f"pipeline configs folder {folder} does not exist: {hint}")
    configs = load_pipelines(folder)
    if not configs:
        raise ConfigError(f"pipeline configs folder {folder} holds no *.yaml or *.yml file: {hint}")
    return configs


def pipeline_by_name(name: str) -> PipelineConfig | None:
    return next((cfg for cfg in load_pipeline_folder(pipelines_dir()) if cfg.name == name), None)
