"""What every step gets: the pipeline config, the run id, the store, and the run's key layout.

Layout of one run in the store (``runs/<pipeline>/<run>/``)::

    ingest/result.json      snapshot key + hash, row counts
    validate/result.json    every expectation, drift statistics; validate/data_docs/index.html
    train/result.json       curves, final metrics;  train/model/  (SavedModel + model.keras)
    train/checkpoint/       resumable state while training runs
    evaluate/result.json    candidate and champion scored on the same test set; evaluate/report.html
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from slipway.config import PipelineConfig
from slipway.errors import StepInputMissing
from slipway.store import ArtifactNotFound, ArtifactStore, open_store

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_run_id(run_id: str) -> str:
    """Airflow run ids contain ``:`` and ``+``; keep keys portable across S3 and file systems."""
    cleaned = _UNSAFE.sub("_", run_id).strip("._")
    if not cleaned:
        raise ValueError(f"run id {run_id!r} has no usable characters")
    return cleaned


@dataclass
class RunContext:
    config: PipelineConfig
    run_id: str
    store: ArtifactStore
    partition: str | None = None

    @classmethod
    def create(cls, config: PipelineConfig, run_id: str, partition: str | None = None) -> RunContext:
        return cls(config=config, run_id=run_id, store=open_store(config.store_url), partition=partition)

    @property
    def prefix(self) -> str:
        return f"runs/{self.config.name}/{safe_run_id(self.run_id)}"

    def key(self, step: str, name: str) -> str:
        return f"{self.prefix}/{step}/{name}"

    def result_key(self, step: str) -> str:
        return self.key(step, "result.json")

    def read_result(self, step: str) -> dict[str, Any]:
        try:
            return self.store.get_json(self.result_key(step))
        except ArtifactNotFound:
            where = self.store.uri(self.result_key(step))
            raise StepInputMissing(
                f"no result of step {step!r} for run {self.run_id!r} at {where}: run {step} first"
            ) from None

    def write_result(self, step: str, result: dict[str, Any]) -> str:
        key = self.result_key(step)
        self.store.put_json(key, result)
        return key
