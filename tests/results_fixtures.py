"""Complete, valid step results for tests that stage a run's store by hand (no TensorFlow).

They go through the same models the steps write (``slipway.results``), so a test that stages a
run breaks when a contract changes, like the code does.
"""

from __future__ import annotations

import numpy as np

from slipway.config import PipelineConfig
from slipway.data import Snapshot, Split, save_snapshot
from slipway.evaluation.report import BLESSING_END, BLESSING_START
from slipway.metrics import MetricsBatch
from slipway.release import judge_candidate, register_candidate
from slipway.results import BootstrapSummary as Bootstrap
from slipway.results import (
    ClassScore,
    ComparisonSummary,
    EvaluateResult,
    IngestResult,
    IngestSource,
    Latency,
    ModelSizeSummary,
    SplitRows,
    TrainResult,
    VariantScore,
)
from slipway.steps.context import RunContext
from tests.fixtures_store import write_model


def ingest_result(snapshot_key: str, *, snapshot_hash: str = "0" * 64, rows: int = 0) -> IngestResult:
    return IngestResult(
        snapshot_key=snapshot_key,
        snapshot_hash=snapshot_hash,
        snapshot_uri=f"file:///{snapshot_key}",
        rows=SplitRows(train=rows, validation=0, test=0),
        input_shape=[8, 8],
        num_classes=10,
        profile_key=f"{snapshot_key}/profile.json",
        source=IngestSource(
            kind="digits",
            uri=None,
            partition=None,
            scale=1.0,
            max_examples=None,
            origin="test",
            own_test_split=False,
        ),
        reused=False,
    )


def train_result(model_key: str, *, fingerprint: str = "f") -> TrainResult:
    return TrainResult(
        model_key=model_key,
        model_uri=f"file:///{model_key}",
        config_fingerprint=fingerprint,
        snapshot_hash="0" * 64,
        epochs_completed=1,
        resumed_from_epoch=0,
        final_metrics={"accuracy": 0.9},
        history={"accuracy": [0.9]},
        training_seconds=1.0,
        code_version="test",
    )


def variant_score(
    accuracy: float, model_key: str, *, version: int | None = None, classes: int = 2
) -> VariantScore:
    return VariantScore(
        accuracy=accuracy,
        log_loss=0.3,
        ece=0.01,
        ece_bins=15,
        per_class=[
            ClassScore.model_validate(
                {
                    "class": c,
                    "name": str(c),
                    "precision": accuracy,
                    "recall": accuracy,
                    "f1": accuracy,
                    "support": 50,
                }
            )
            for c in range(classes)
        ],
        confusion_matrix=None,
        test_rows=50 * classes,
        latency=Latency(
            batch_size=32, ms_per_batch=1.0, ms_per_example=1 / 32, timed_batches=5, warmup_batches=1
        ),
        size=ModelSizeSummary(model_file_bytes=1000, artifact_bytes=2000, model_file_mb=0.001),
        predict_seconds=0.1,
        version=version,
        model_key=model_key,
    )


def evaluate_result(
    run_prefix: str,
    snapshot_key: str,
    *,
    accuracy: float = 0.9,
    champion_version: int | None = None,
    champion_accuracy: float = 0.85,
) -> EvaluateResult:
    """An evaluate result of ``run_prefix`` (``runs/<pipeline>/<run>``), judged against a champion or none."""
    champion = (
        variant_score(champion_accuracy, f"registry/m/{champion_version}", version=champion_version)
        if champion_version is not None
        else None
    )
    comparison = (
        ComparisonSummary(
            accuracy_delta=accuracy - champion_accuracy,
            mcnemar_p_value=0.01,
            candidate_only=10,
            champion_only=2,
            both_correct=80,
            both_wrong=8,
            discordant=12,
            bootstrap_ci=Bootstrap(estimate=0.05, low=0.01, high=0.09, confidence=0.95, samples=1000, seed=0),
        )
        if champion is not None
        else None
    )
    return EvaluateResult(
        model_name="digits",
        run_id=run_prefix.rsplit("/", 1)[-1],
        snapshot_key=snapshot_key,
        test_rows=100,
        num_classes=2,
        candidate=variant_score(accuracy, f"{run_prefix}/train/model"),
        champion=champion,
        comparison=comparison,
        report_key=f"{run_prefix}/evaluate/report.html",
        report_uri=f"file:///{run_prefix}/evaluate/report.html",
        predictions_key=f"{run_prefix}/evaluate/predictions.npz",
        wall_seconds=1.0,
    )


# --------------------------------------------------------------------------- staged runs


def _snapshot(ctx: RunContext, seed: int) -> str:
    rng = np.random.default_rng(seed)

    def split(n: int) -> Split:
        return Split(rng.random((n, 8, 8), dtype="float32"), np.arange(n, dtype="int64") % 10)

    return save_snapshot(ctx.store, Snapshot(split(40), split(10), split(10)), ctx.config.name)


def evaluated_run(
    config: PipelineConfig, run_id: str, *, judged_against: int | None, accuracy: float = 0.9
) -> RunContext:
    """A run whose train and evaluate steps are done: its candidate was judged against ``judged_against``."""
    ctx = RunContext.create(config, run_id)
    snapshot_key = _snapshot(ctx, seed=len(run_id) + sum(map(ord, run_id)))
    write_model(ctx.store, ctx.layout.model, tag=run_id)
    report = f"<!DOCTYPE html><html><body>{BLESSING_START}pending{BLESSING_END}</body></html>"
    ctx.store.put_bytes(ctx.layout.evaluation_report, report.encode())
    ctx.write_result("train", train_result(ctx.layout.model))
    ctx.write_result(
        "evaluate",
        evaluate_result(ctx.prefix, snapshot_key, accuracy=accuracy, champion_version=judged_against),
    )
    return ctx


def release_batch() -> MetricsBatch:
    return MetricsBatch(pipeline="digits", step="promote")


def blessed_and_registered(ctx: RunContext) -> int:
    assert judge_candidate(ctx, release_batch()).blessed
    return int(register_candidate(ctx, release_batch())["version"])
