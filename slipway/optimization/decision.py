"""Does the leaner variant replace the float model in serving? A pure decision on measured figures.

The variant is judged by the evaluation gate itself (``gate.decide``) as if it were a candidate
and the float model its champion, on the same test examples: every configured gate check
(accuracy floor, class recall, latency and size ceilings, non-regression with McNemar's test)
must pass. Two checks of its own are added, because a leaner model is only worth serving when it
costs (almost) nothing and saves something: the accuracy drop must not exceed
``leaner.max_accuracy_drop`` at all (significant or not), and the serving artifact must be at
least ``leaner.min_size_ratio`` times smaller, and no more than ``leaner.max_latency_ratio``
times slower per example.
"""

from __future__ import annotations

from typing import Any

from slipway.config import GateConfig, LeanerConfig
from slipway.evaluation.gate import Check, decide


def decide_leaner(
    gate: GateConfig,
    leaner: LeanerConfig,
    *,
    float_summary: dict[str, Any],
    leaner_summary: dict[str, Any],
    comparison: dict[str, Any],
    size_ratio: float,
) -> dict[str, Any]:
    """``replaces_float`` plus every check (the gate's and the leaner variant's own) with its figures."""
    policy = gate.model_copy(update={"max_accuracy_drop": leaner.max_accuracy_drop})
    blessing = decide(
        policy,
        {
            "candidate": leaner_summary,
            "champion": {**float_summary, "version": None},
            "comparison": comparison,
        },
    )
    delta = float(comparison["accuracy_delta"])
    drop_ok = delta >= -leaner.max_accuracy_drop - 1e-12
    size_ok = size_ratio >= leaner.min_size_ratio
    latency = float(leaner_summary["latency"]["ms_per_example"])
    float_latency = float(float_summary["latency"]["ms_per_example"])
    latency_ratio = latency / float_latency if float_latency > 0 else 1.0
    latency_ok = latency_ratio <= leaner.max_latency_ratio + 1e-12
    extra = [
        Check(
            "accuracy_drop",
            delta,
            -leaner.max_accuracy_drop,
            "pass" if drop_ok else "fail",
            f"accuracy {leaner_summary['accuracy']:.4f} vs float {float_summary['accuracy']:.4f}"
            f" (delta {delta:+.4f}; at most {leaner.max_accuracy_drop:.4f} may be lost)",
        ),
        Check(
            "size_ratio",
            size_ratio,
            leaner.min_size_ratio,
            "pass" if size_ok else "fail",
            f"serving artifact {size_ratio:.2f}x smaller (at least {leaner.min_size_ratio:.2f}x required)",
        ),
        Check(
            "latency_ratio",
            latency_ratio,
            leaner.max_latency_ratio,
            "pass" if latency_ok else "fail",
            f"{latency:.4f} vs float {float_latency:.4f} ms per example ({latency_ratio:.2f}x;"
            f" at most {leaner.max_latency_ratio:.2f}x allowed)",
        ),
    ]
    checks = [*blessing.checks, *extra]
    failed = [c for c in checks if c.verdict == "fail"]
    return {
        "replaces_float": not failed,
        "checks": [c.to_dict() for c in checks],
        "reasons": [f"{c.name}: {c.detail}" for c in failed] or ["all checks passed"],
    }
