"""Where the pipeline configs live, for the DAG file and the artifacts plugin alike."""

from __future__ import annotations

import os
from pathlib import Path

from slipway.config import PipelineConfig, load_pipelines

DEFAULT_PIPELINES_DIR = Path(__file__).resolve().parents[1] / "dags" / "pipelines"


def pipelines_dir() -> Path:
    """``SLIPWAY_PIPELINES_DIR`` if set, else ``dags/pipelines`` beside the DAG file."""
    return Path(os.environ.get("SLIPWAY_PIPELINES_DIR") or DEFAULT_PIPELINES_DIR)


def pipeline_by_name(name: str) -> PipelineConfig | None:
    return next((cfg for cfg in load_pipelines(pipelines_dir()) if cfg.name == name), None)
