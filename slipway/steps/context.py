"""What every step gets: the pipeline config, the run id, the store, and the run's key layout.

The layout itself (which key holds what) is ``slipway.layout``; the result models are
``slipway.results``. ``read_result``/``write_result`` are the only way a step's result enters or
leaves the store, so every reader gets a parsed, typed result.
"""

from __future__ import annotations

from dataclasses import dataclass

from slipway.config import PipelineConfig
from slipway.errors import StepInputMissing
from slipway.layout import RunLayout, safe_run_id
from slipway.results import (
    EvaluateResult,
    IngestResult,
    ResultModel,
    ResultT,
    TrainResult,
    ValidateResult,
    parse_as,
)
from slipway.store import ArtifactNotFound, ArtifactStore, open_store

__all__ = ["RunContext", "safe_run_id"]


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
    def layout(self) -> RunLayout:
        return RunLayout(self.config.name, self.run_id)

    @property
    def prefix(self) -> str:
        return self.layout.prefix

    def key(self, step: str, name: str) -> str:
        return self.layout.key(step, name)

    def result_key(self, step: str) -> str:
        return self.layout.result(step)

    def read_result(self, step: str, model: type[ResultT]) -> ResultT:
        """The stored result of ``step``, parsed; ``StepInputMissing`` when the step has not run."""
        key = self.result_key(step)
        try:
            raw = self.store.get_json(key)
        except ArtifactNotFound:
            raise StepInputMissing(
                f"no result of step {step!r} for run {self.run_id!r} at {self.store.uri(key)}: run {step} first"
            ) from None
        return parse_as(model, raw, what=f"the {step} result at {self.store.uri(key)}")

    def find_result(self, step: str, model: type[ResultT]) -> ResultT | None:
        """Like ``read_result``, but None when the step has not written a result."""
        try:
            return self.read_result(step, model)
        except StepInputMissing:
            return None

    def ingest_result(self) -> IngestResult:
        return self.read_result("ingest", IngestResult)

    def validate_result(self) -> ValidateResult:
        return self.read_result("validate", ValidateResult)

    def train_result(self) -> TrainResult:
        return self.read_result("train", TrainResult)

    def evaluate_result(self) -> EvaluateResult:
        return self.read_result("evaluate", EvaluateResult)

    def write_result(self, step: str, result: ResultModel) -> str:
        key = self.result_key(step)
        self.store.put_json(key, result.dump())
        return key
