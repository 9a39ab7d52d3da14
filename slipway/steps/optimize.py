"""The optimize step: a leaner variant of the gated candidate, scored against it, and a decision.

Inputs: ``train/model/`` (the candidate the gate judged) and the run's snapshot. The variant
(``tuning.leaner.kind``, int8 by default) is written to ``optimize/model/`` in the serving
layout; both models are scored on the same test examples (accuracy, McNemar's exact test,
latency at the gate's batch size with the two models' calls interleaved, size of the serving
artifact) and
``optimization.decision.decide_leaner`` says whether the variant replaces the float model.
Register then registers whichever model serves (``slipway.release``). Output:
``optimize/result.json``. Idempotent: a retry returns the recorded decision.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from slipway.config import LeanerConfig
from slipway.metrics import MetricsBatch
from slipway.results import OptimizeResult
from slipway.steps.context import RunContext

log = logging.getLogger(__name__)


def run(ctx: RunContext, batch: MetricsBatch) -> OptimizeResult:
    done = ctx.find_result("optimize", OptimizeResult)
    if done is not None:  # idempotent: a retry keeps the decision already recorded
        return done
    from slipway.data import load_snapshot
    from slipway.evaluation.comparison import compare, score_variant
    from slipway.optimization.decision import decide_leaner
    from slipway.optimization.leaner import make_leaner, paired_latency, serving_size

    cfg = ctx.config
    leaner = cfg.tuning.leaner if cfg.tuning is not None else LeanerConfig(enabled=True)
    test = load_snapshot(ctx.store, ctx.ingest_result().snapshot_key).test
    common = {"num_classes": cfg.data.num_classes, "latency_batch_size": cfg.gate.latency_batch_size}
    float_prefix, leaner_prefix = ctx.key("train", "model"), ctx.key("optimize", "model")
    with tempfile.TemporaryDirectory(prefix="slipway-optimize-") as tmp:
        float_dir = ctx.store.download_dir(float_prefix, Path(tmp) / "float")
        leaner_dir = make_leaner(float_dir, Path(tmp) / "leaner", leaner.kind)
        reference = score_variant("float", float_dir, test.x, test.y, **common)
        variant = score_variant("leaner", leaner_dir, test.x, test.y, **common)
        latency = paired_latency(
            {"float": reference.model, "leaner": variant.model},
            test.x,
            batch_size=cfg.gate.latency_batch_size,
        )
        float_size = serving_size(float_dir, strip_optimizer=True)
        leaner_size = serving_size(leaner_dir)
        ctx.store.upload_dir(leaner_dir, leaner_prefix)
    comparison = compare(
        variant, reference, bootstrap_samples=cfg.gate.bootstrap_samples, seed=cfg.gate.bootstrap_seed
    )
    summary = comparison.summary()
    assert summary is not None
    size_ratio = float_size.savedmodel_bytes / max(leaner_size.savedmodel_bytes, 1)
    # Latency from the interleaved timing (same moments of load for both), not from scoring.
    float_summary = {**reference.summary(cfg.data.class_names), "latency": latency["float"].to_dict()}
    leaner_summary = {**variant.summary(cfg.data.class_names), "latency": latency["leaner"].to_dict()}
    decision = decide_leaner(
        cfg.gate,
        leaner,
        float_summary=float_summary,
        leaner_summary=leaner_summary,
        comparison=summary,
        size_ratio=size_ratio,
    )
    result = OptimizeResult(
        kind=leaner.kind,
        **decision,
        model_key=leaner_prefix,
        float_model_key=float_prefix,
        test_rows=len(test),
        size_ratio=size_ratio,
        float=_figures(float_summary, float_size.to_dict()),
        leaner=_figures(leaner_summary, leaner_size.to_dict()),
        comparison={
            k: summary[k] for k in ("accuracy_delta", "mcnemar_p_value", "discordant") if k in summary
        },
    )
    ctx.write_result("optimize", result)
    log.info(
        "leaner %s variant: accuracy %.4f vs float %.4f (McNemar p=%.3g), %.2fx smaller, "
        "%.4f vs %.4f ms/example: %s",
        leaner.kind,
        leaner_summary["accuracy"],
        float_summary["accuracy"],
        summary["mcnemar_p_value"],
        size_ratio,
        leaner_summary["latency"]["ms_per_example"],
        float_summary["latency"]["ms_per_example"],
        "replaces the float model" if decision["replaces_float"] else "; ".join(decision["reasons"]),
    )
    return result


def _figures(summary: dict[str, Any], size: dict[str, Any]) -> dict[str, Any]:
    return {
        "accuracy": summary["accuracy"],
        "latency_ms_per_example": summary["latency"]["ms_per_example"],
        "latency_batch_size": summary["latency"]["batch_size"],
        "size": size,
    }
