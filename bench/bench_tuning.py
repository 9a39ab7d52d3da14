"""Sweep benchmark: does a 15-minute sweep beat the reference Fashion-MNIST model, significantly?

Baseline, measured in the same run: the reference configuration of
``dags/pipelines/fashion_mnist.yaml`` (Dense 512 / Dropout 0.2, Adam 1e-3, batch 128, 10 epochs)
is trained, evaluated on the 10,000 t10k images, gated and promoted as champion. Then the
pipeline's ``tuning`` section runs as the tune DAG runs it - the same ``python -m slipway``
steps the launcher starts, trials ``parallel`` at a time like mapped tasks under a local
executor - and its best trial is evaluated against that champion on the same test images
(McNemar's exact test), gated, made leaner (int8) and registered.

    .venv/bin/python bench/bench_tuning.py [--out bench/results/tuning.json]

The sweep's wall time runs from its ingest to the end of register (its study's ``timeout_s``
bounds when trials may start). Data validation is not part of either path. Print: one JSON
document with the figures; the load average at start and end says how busy the machine was.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's slipway, as the step subprocesses (cwd=REPO) use
CONFIG = REPO / "dags" / "pipelines" / "fashion_mnist.yaml"


def step(name: str, run_id: str, *extra: str) -> dict:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "slipway", name, "--config", str(CONFIG), "--run-id", run_id, *extra],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("SLIPWAY_RESULT ")]
    print(
        f"  {name} {' '.join(extra)}: exit {proc.returncode} in {time.monotonic() - started:.0f}s", flush=True
    )
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        raise RuntimeError(f"{name} failed:\n{tail}")
    return json.loads(lines[-1][len("SLIPWAY_RESULT ") :])


def stored_result(run_id: str, name: str) -> dict | None:
    from slipway.config import load_config
    from slipway.steps.context import RunContext
    from slipway.store import ArtifactNotFound

    try:
        return RunContext.create(load_config(CONFIG), run_id).store.get_json(
            f"runs/fashion_mnist/{run_id}/{name}/result.json"
        )
    except ArtifactNotFound:
        return None


def release(run_id: str) -> dict:
    from slipway.config import load_config
    from slipway.metrics import MetricsBatch
    from slipway.release import judge_candidate, promote_candidate, register_candidate
    from slipway.steps.context import RunContext

    ctx = RunContext.create(load_config(CONFIG), run_id)
    blessing = judge_candidate(ctx, MetricsBatch(pipeline="fashion_mnist", step="gate"))
    out = {"blessing": blessing.to_dict()}
    if blessing.blessed:
        registered = register_candidate(ctx, MetricsBatch(pipeline="fashion_mnist", step="register"))
        promote_candidate(ctx, MetricsBatch(pipeline="fashion_mnist", step="promote"), registered["version"])
        out["version"] = registered["version"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="also write the JSON figures here")
    parser.add_argument("--work", default=None, help="reuse this folder's store (reference already trained)")
    args = parser.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="slipway-bench-tuning-"))
    os.environ["SLIPWAY_STORE_URL"] = f"file://{work / 'store'}"
    os.environ["SLIPWAY_METRICS_DIR"] = str(work / "metrics")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    load_start = os.getloadavg()
    figures: dict = {"store": os.environ["SLIPWAY_STORE_URL"], "load_average_start": load_start}

    print("reference configuration (champion):", flush=True)
    started = time.monotonic()
    step("ingest", "bench-reference")
    step("train", "bench-reference")  # idempotent: reused when this store already has it
    reference_eval = stored_result("bench-reference", "evaluate") or step("evaluate", "bench-reference")
    reference = release("bench-reference")
    figures["reference"] = {
        "test_accuracy": reference_eval["candidate"]["accuracy"],
        "version": reference.get("version"),
        "wall_s": round(time.monotonic() - started, 1),
    }

    print("sweep:", flush=True)
    from slipway.config import load_config
    from slipway.steps.context import RunContext
    from slipway.steps.tune_trial import study_for, study_id_for

    config = load_config(CONFIG)
    assert config.tuning is not None
    run_id = f"bench-sweep-{int(time.time())}"  # a fresh study even when --work reuses a store
    started = time.monotonic()
    step("ingest", run_id)
    ctx = RunContext.create(config, run_id)
    index = study_for(ctx).create(config, study_id_for(ctx))
    slots = sorted(int(n) for n in index["trials"])
    with ThreadPoolExecutor(max_workers=config.tuning.parallel) as pool:
        trial_results = list(pool.map(lambda n: trial_with_retry(run_id, n), slots))
    trials_wall = time.monotonic() - started
    selected = step("tune-select", run_id)
    evaluation = step("evaluate", run_id)
    gate = release_gate_only(run_id)
    optimized = step("optimize", run_id) if config.tuning.leaner.enabled else None
    registered = register_and_promote(run_id) if gate["blessed"] else None
    sweep_wall = time.monotonic() - started

    comparison = evaluation.get("comparison") or {}
    figures["sweep"] = {
        "wall_s": round(sweep_wall, 1),
        "trials_wall_s": round(trials_wall, 1),
        "study_id": selected["study_id"],
        "trials": selected["trials"],
        "trial_table": [
            {
                k: t.get(k)
                for k in ("number", "state", "value", "epochs_completed", "duration_s", "params", "reason")
            }
            for t in trial_results
        ],
        "best_trial": selected["trial"],
        "best_params": selected["params"],
        "best_val_accuracy": selected["value"],
        "test_accuracy": evaluation["candidate"]["accuracy"],
        "champion_test_accuracy": (evaluation.get("champion") or {}).get("accuracy"),
        "accuracy_delta": comparison.get("accuracy_delta"),
        "mcnemar_p_value": comparison.get("mcnemar_p_value"),
        "candidate_only": comparison.get("candidate_only"),
        "champion_only": comparison.get("champion_only"),
        "gate_blessed": gate["blessed"],
        "gate_reasons": gate["reasons"],
        "registered_version": (registered or {}).get("version"),
        "report_key": selected["report_key"],
    }
    if optimized is not None:
        figures["leaner"] = {
            k: optimized[k]
            for k in ("kind", "replaces_float", "size_ratio", "float", "leaner", "comparison", "reasons")
        }
    figures["load_average_end"] = os.getloadavg()
    text = json.dumps(figures, indent=2, default=str)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0


def trial_with_retry(run_id: str, number: int, retries: int = 1) -> dict:
    """One mapped trial task: retried once on failure, like the DAG's ``retries``."""
    for attempt in range(retries + 1):
        try:
            return step("tune-trial", run_id, "--trial", str(number))
        except RuntimeError as exc:
            print(f"  trial {number} attempt {attempt + 1} failed: {str(exc)[-300:]}", flush=True)
    return {"number": number, "state": "failed"}


def release_gate_only(run_id: str) -> dict:
    from slipway.config import load_config
    from slipway.metrics import MetricsBatch
    from slipway.release import judge_candidate
    from slipway.steps.context import RunContext

    ctx = RunContext.create(load_config(CONFIG), run_id)
    return judge_candidate(ctx, MetricsBatch(pipeline="fashion_mnist", step="gate")).to_dict()


def register_and_promote(run_id: str) -> dict:
    from slipway.config import load_config
    from slipway.metrics import MetricsBatch
    from slipway.release import promote_candidate, register_candidate
    from slipway.steps.context import RunContext

    ctx = RunContext.create(load_config(CONFIG), run_id)
    registered = register_candidate(ctx, MetricsBatch(pipeline="fashion_mnist", step="register"))
    promote_candidate(ctx, MetricsBatch(pipeline="fashion_mnist", step="promote"), registered["version"])
    return registered


if __name__ == "__main__":
    sys.exit(main())
