"""The typed ``result.json`` of each step: what the step writes and what every reader parses.

A step builds one of these models and ``RunContext.write_result`` stores it; the operators, the
release decisions, the summary, the gate and the task links read it back through
``RunContext.read_result`` (or ``parse_result`` for a result that came another way, such as a
launcher's ``SLIPWAY_RESULT`` line), so a field renamed on one side fails a type check or a
validation error naming the field, not a ``KeyError`` three tasks later.

Every model forbids unknown fields: a new field is added here first, then written. Nested parts
whose shape belongs to another library (Great Expectations results, drift reference documents)
stay ``dict[str, Any]``.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from slipway.errors import BadInputError


class ResultContractError(BadInputError):
    """A stored or reported step result does not match its model (written by other code?)."""


class ResultModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def dump(self) -> dict[str, Any]:
        """The JSON form, as stored in ``result.json`` and pushed as the task's XCom."""
        return self.model_dump(mode="json", by_alias=True)


# --------------------------------------------------------------------------- ingest


class SplitRows(ResultModel):
    train: int
    validation: int
    test: int


class IngestSource(ResultModel):
    kind: str
    uri: str | None
    partition: str | None
    scale: float
    max_examples: int | None
    origin: str
    own_test_split: bool


class IngestResult(ResultModel):
    snapshot_key: str
    snapshot_hash: str
    snapshot_uri: str
    rows: SplitRows
    input_shape: list[int]
    num_classes: int
    profile_key: str
    source: IngestSource
    reused: bool


# --------------------------------------------------------------------------- validate


class ExpectationOutcome(ResultModel):
    id: str
    expectation: str
    type: str
    suite: str
    column: str | None
    threshold: Any
    observed: Any
    success: bool
    message: str
    gx_result: dict[str, Any]


class DriftSection(ResultModel):
    reference: dict[str, Any]
    statistics: dict[str, dict[str, Any]]


class ValidateResult(ResultModel):
    success: bool
    rows: int
    evaluated_expectations: int
    failed_expectations: int
    failed: list[str]
    failure_messages: list[str]
    expectations: list[ExpectationOutcome]
    drift: DriftSection
    facts: dict[str, Any]
    timings_seconds: dict[str, float]
    summary: str
    snapshot_key: str
    snapshot_hash: str | None
    data_docs_key: str
    data_docs_uri: str
    reference_updated: bool
    # The champion scored on the partition (slipway/validation/witness.py); None without one.
    champion_witness: dict[str, Any] | None = None
    # validate/report.html: the structural pictures of failed checks.
    report_key: str | None = None
    report_uri: str | None = None


# --------------------------------------------------------------------------- train


class SweepOrigin(ResultModel):
    """Which trial of which study a candidate came from (recorded in the Blessing and registry)."""

    study_id: str
    study_key: str
    trial: int
    params: dict[str, Any]
    objective: str
    value: float
    trials: dict[str, int]


class TrainResult(ResultModel):
    model_key: str
    model_uri: str
    config_fingerprint: str
    snapshot_hash: str
    epochs_completed: int
    resumed_from_epoch: int
    final_metrics: dict[str, float]
    history: dict[str, list[float]]
    training_seconds: float
    code_version: str
    # Set when the model is a sweep's best trial (``tune-select``), not a train step's.
    sweep: SweepOrigin | None = None
    # How it was trained (``slipway/training/backend.py``); absent for a sweep's exported trial.
    backend: str | None = None
    workers: int = 1
    weights_checksum: str | None = None
    mixed_precision: str | None = None
    jit_compile: bool | None = None


class TrainWorkerResult(ResultModel):
    """What a non-chief worker of multi-worker training reports: it writes no model."""

    role: Literal["worker"] = "worker"
    epochs_completed: int
    # Hash of the trained weights: equal to the chief's when the workers trained one model.
    weights_checksum: str | None = None


# --------------------------------------------------------------------------- evaluate


class ClassScore(ResultModel):
    class_index: int = Field(alias="class")
    name: str
    precision: float
    recall: float | None
    f1: float
    support: int


class Latency(ResultModel):
    batch_size: int
    ms_per_batch: float
    ms_per_example: float
    timed_batches: int
    warmup_batches: int


class ModelSizeSummary(ResultModel):
    model_file_bytes: int
    artifact_bytes: int
    model_file_mb: float


class VariantScore(ResultModel):
    """One model (candidate or champion) scored on the run's test set."""

    accuracy: float
    log_loss: float
    ece: float
    ece_bins: int
    per_class: list[ClassScore]
    confusion_matrix: list[list[int]] | None
    test_rows: int
    latency: Latency
    size: ModelSizeSummary | None
    predict_seconds: float
    version: int | None
    model_key: str
    # Candidate only: predicted-class shares and confidence on the test split, stored at
    # registration as the champion witness's reference (slipway/validation/witness.py).
    output_profile: dict[str, Any] | None = None


class BootstrapSummary(ResultModel):
    estimate: float
    low: float
    high: float
    confidence: float
    samples: int
    seed: int


class ComparisonSummary(ResultModel):
    accuracy_delta: float
    mcnemar_p_value: float
    candidate_only: int
    champion_only: int
    both_correct: int
    both_wrong: int
    discordant: int
    bootstrap_ci: BootstrapSummary


class EvaluateResult(ResultModel):
    model_name: str
    run_id: str
    snapshot_key: str
    test_rows: int
    num_classes: int
    candidate: VariantScore
    champion: VariantScore | None
    comparison: ComparisonSummary | None
    report_key: str
    report_uri: str
    predictions_key: str
    wall_seconds: float
    # Both models on the pipeline's golden test set (slipway/evaluation/golden.py): source, rows,
    # hash, candidate/champion metrics and their comparison; None before a golden set exists.
    golden: dict[str, Any] | None = None

    @property
    def champion_version(self) -> int | None:
        """The champion the candidate was judged against (None: there was none, first model).

        Promotion moves the ``champion`` alias by compare-and-swap against exactly this version.
        """
        return self.champion.version if self.champion is not None else None


# --------------------------------------------------------------------------- tuning


class TuneTrialResult(ResultModel):
    """One trial's record (``slipway/tuning/study.py`` owns its whole shape: curves, attempts).

    Only the fields every reader relies on are fixed here; the record carries more, so extra
    fields are allowed for this model alone.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    study_id: str
    number: int
    params: dict[str, Any] = Field(default_factory=dict)  # none for a slot closed before it started
    state: str
    value: float | None = None


class TuneSelectResult(ResultModel):
    """The sweep's outcome: the best trial (exported as the run's ``train`` result) and the report."""

    study_id: str
    report_key: str
    trials: dict[str, int]
    study_key: str | None = None
    trial: int | None = None
    params: dict[str, Any] | None = None
    objective: str | None = None
    value: float | None = None
    model_key: str | None = None
    report_uri: str | None = None
    trial_states: dict[str, str] = Field(default_factory=dict)


class LeanerFigures(ResultModel):
    accuracy: float
    latency_ms_per_example: float
    latency_batch_size: int
    size: dict[str, Any]


class OptimizeResult(ResultModel):
    """The leaner variant scored against the float model, and whether it replaces it in serving."""

    kind: str
    replaces_float: bool
    checks: list[dict[str, Any]]
    reasons: list[str]
    model_key: str
    float_model_key: str
    test_rows: int
    size_ratio: float
    float: LeanerFigures
    leaner: LeanerFigures
    comparison: dict[str, Any]


ResultT = TypeVar("ResultT", bound=ResultModel)

RESULT_MODELS: dict[str, type[ResultModel]] = {
    "ingest": IngestResult,
    "validate": ValidateResult,
    "train": TrainResult,
    "evaluate": EvaluateResult,
    "tune-trial": TuneTrialResult,
    "tune-select": TuneSelectResult,
    "optimize": OptimizeResult,
}


def parse_as(model: type[ResultT], raw: Any, *, what: str) -> ResultT:
    """Validate ``raw`` (a dict from JSON) against ``model``; raise naming every bad field."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()[:10]
        )
        raise ResultContractError(
            f"{what} does not match its contract ({model.__name__}): {problems}"
        ) from None


def model_for(step: str, raw: Any = None) -> type[ResultModel]:
    """The result model of ``step`` (a train worker's result has its own)."""
    if step == "train" and isinstance(raw, dict) and raw.get("role") == "worker":
        return TrainWorkerResult
    try:
        return RESULT_MODELS[step]
    except KeyError:
        raise ValueError(f"no result model for step {step!r} (known: {', '.join(RESULT_MODELS)})") from None


def parse_result(step: str, raw: Any, *, where: str = "") -> ResultModel:
    """A step's result, whatever the step, parsed by its model (for generic readers)."""
    return parse_as(model_for(step, raw), raw, what=f"the {step} result" + (f" at {where}" if where else ""))
