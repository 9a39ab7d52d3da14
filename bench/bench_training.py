"""Benchmark: Slipway's train step vs the reference Keras program, in the same run.

Same data, model and batch size for both: the reference pipeline's Fashion-MNIST snapshot
(54,000 training images after the validation carve-out; the 10,000 t10k images as test set),
Flatten / Dense 512 relu / Dropout 0.2 / Dense 10 softmax, Adam 1e-3, batch 128, 10 epochs.

* reference - the textbook program: ``model.fit(x_train, y_train, batch_size=128, epochs=10)`` on
  NumPy arrays scaled to [0, 1], Keras on TensorFlow (the default backend), nothing else;
* slipway - ``python -m slipway train`` on ``dags/pipelines/fashion_mnist.yaml`` with its
  defaults (``backend: auto``...), which on top of fitting also validates every epoch,
  checkpoints every epoch to the store and exports the SavedModel.

Each runs in its own process (the Keras backend is fixed per process) and the pairs alternate,
so a noisy neighbour slows both. Compared: the training time each reports, over the same scope
(reference: building and compiling the model, then the ``fit`` call; slipway: the step's
``training_seconds``, build + fit + per-epoch validation and checkpoints), plus each process's
whole wall time, and the test accuracy of each model.

The train step keeps JAX's compiled programs in a compilation cache (``training.compilation_cache``)
that this run creates empty: the first pair is *cold* (everything compiled), the later ones
*warm* (what a scheduled retraining of the same model sees); both medians are printed. ``--cold``
empties the cache before every train step. The reference (TensorFlow) has no such cache.

    .venv/bin/python bench/bench_training.py [--repeats N] [--epochs 10] [--cold] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from slipway.config import load_config  # noqa: E402
from slipway.results import IngestResult  # noqa: E402
from slipway.steps.context import RunContext  # noqa: E402

PIPELINE = ROOT / "dags" / "pipelines" / "fashion_mnist.yaml"

REFERENCE = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from slipway.data import load_snapshot
    from slipway.store import open_store

    store_url, snapshot_key, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    snap = load_snapshot(open_store(store_url), snapshot_key)
    x_train, y_train, x_test, y_test = snap.train.x, snap.train.y, snap.test.x, snap.test.y

    import keras
    started = time.perf_counter()  # same scope as the step's training_seconds: build + fit
    keras.utils.set_random_seed(42)
    model = keras.Sequential([
        keras.Input((28, 28)),
        keras.layers.Flatten(),
        keras.layers.Dense(512, activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    fit_started = time.perf_counter()
    model.fit(x_train, y_train, batch_size=128, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - started
    fit_seconds = time.perf_counter() - fit_started
    _, accuracy = model.evaluate(x_test, y_test, batch_size=1024, verbose=0)
    print(json.dumps({"training_seconds": seconds, "fit_seconds": fit_seconds, "test_accuracy": accuracy,
                      "backend": keras.backend.backend(), "examples": len(x_train)}))
    """
)

SLIPWAY_ACCURACY = textwrap.dedent(
    """
    import json, sys, tempfile
    from pathlib import Path
    from slipway.data import load_snapshot
    from slipway.store import open_store
    import keras

    store_url, snapshot_key, model_key = sys.argv[1], sys.argv[2], sys.argv[3]
    store = open_store(store_url)
    snap = load_snapshot(store, snapshot_key)
    with tempfile.TemporaryDirectory() as tmp:
        local = store.download_file(model_key + "/model.keras", Path(tmp) / "model.keras")
        model = keras.saving.load_model(local)
    _, accuracy = model.evaluate(snap.test.x, snap.test.y, batch_size=1024, verbose=0)
    print(json.dumps({"test_accuracy": accuracy}))
    """
)


def _env(store_url: str) -> dict[str, str]:
    env = {**os.environ, "SLIPWAY_STORE_URL": store_url, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("KERAS_BACKEND", None)  # each side runs on its own default
    return env


def _python(code_or_args: list[str], env: dict[str, str]) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *code_or_args], capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(code_or_args[:2])}\n{done.stderr[-4000:]}")
    last = [line for line in done.stdout.splitlines() if line.strip()][-1]
    if last.startswith("SLIPWAY_RESULT "):
        last = last[len("SLIPWAY_RESULT ") :]
    return json.loads(last), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="reference/slipway pairs to run")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--cold", action="store_true", help="empty the XLA compilation cache before every train step"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        store_url = f"file://{tmp}/store"
        env = _env(store_url)
        # A compilation cache of this run's own: the first train step compiles (cold), the
        # later ones reuse its programs (warm), as a scheduled retraining does.
        cache = Path(tmp) / "xla-cache"
        env["SLIPWAY_COMPILATION_CACHE"] = str(cache)
        os.environ["SLIPWAY_STORE_URL"] = store_url
        config = load_config(PIPELINE)
        overrides = json.dumps({"training": {"epochs": args.epochs}})
        print("ingesting Fashion-MNIST into a temporary store ...", flush=True)
        ingest, _ = _python(
            ["-m", "slipway", "ingest", "--config", str(PIPELINE), "--run-id", "bench-ingest"], env
        )
        snapshot_key = ingest["snapshot_key"]
        pairs = []
        for repeat in range(args.repeats):
            ref, ref_wall = _python(["-c", REFERENCE, store_url, snapshot_key, str(args.epochs)], env)
            print(
                f"[{repeat + 1}] reference: build+fit {ref['training_seconds']:.1f} s (fit {ref['fit_seconds']:.1f} s),"
                f" process {ref_wall:.1f} s,"
                f" test accuracy {ref['test_accuracy']:.4f} ({ref['backend']})",
                flush=True,
            )
            run_id = f"bench-{repeat}"
            ctx = RunContext(config=config, run_id=run_id, store=_store(store_url))
            ctx.write_result("ingest", IngestResult.model_validate(ingest))
            argv = ["-m", "slipway", "train", "--config", str(PIPELINE), "--run-id", run_id]
            if args.cold:
                shutil.rmtree(cache, ignore_errors=True)
            warm = cache.is_dir() and any(cache.iterdir())
            step, step_wall = _python([*argv, "--overrides", overrides], env)
            acc, _ = _python(["-c", SLIPWAY_ACCURACY, store_url, snapshot_key, step["model_key"]], env)
            pair = {
                "reference": {**ref, "process_seconds": ref_wall},
                "slipway": {
                    "training_seconds": step["training_seconds"],
                    "process_seconds": step_wall,
                    "test_accuracy": acc["test_accuracy"],
                    "backend": step.get("backend"),
                    "val_accuracy": step["final_metrics"].get("val_accuracy"),
                    "compilation_cache": "warm" if warm else "cold",
                },
            }
            pair["ratio"] = pair["slipway"]["training_seconds"] / ref["training_seconds"]
            # The stricter reading: the reference's fit call alone (its model build not counted).
            pair["ratio_vs_fit_only"] = pair["slipway"]["training_seconds"] / ref["fit_seconds"]
            pair["process_ratio"] = step_wall / ref_wall
            pairs.append(pair)
            print(
                f"[{repeat + 1}] slipway:   train {step['training_seconds']:.1f} s, process {step_wall:.1f} s,"
                f" test accuracy {acc['test_accuracy']:.4f} ({step.get('backend')}, {'warm' if warm else 'cold'} cache)"
                f" -> ratio {pair['ratio']:.2f} (process {pair['process_ratio']:.2f})",
                flush=True,
            )

    ratio = statistics.median(p["ratio"] for p in pairs)
    ratio_fit_only = statistics.median(p["ratio_vs_fit_only"] for p in pairs)
    by_cache = {
        state: [p["ratio"] for p in pairs if p["slipway"]["compilation_cache"] == state]
        for state in ("cold", "warm")
    }
    medians = {state: statistics.median(r) if r else None for state, r in by_cache.items()}
    ref_acc = statistics.median(p["reference"]["test_accuracy"] for p in pairs)
    ours_acc = statistics.median(p["slipway"]["test_accuracy"] for p in pairs)
    summary = {
        "epochs": args.epochs,
        "pairs": pairs,
        "median_ratio": ratio,
        "median_ratio_vs_fit_only": ratio_fit_only,
        "median_ratio_cold_cache": medians["cold"],
        "median_ratio_warm_cache": medians["warm"],
        "reference_test_accuracy": ref_acc,
        "slipway_test_accuracy": ours_acc,
        "goal_ratio_met": ratio <= 0.5,
        "goal_accuracy_met": ours_acc >= ref_acc - 0.005,
    }
    print(
        f"\ntraining time ratio slipway/reference: {ratio:.2f} (goal <= 0.5: "
        f"{'met' if summary['goal_ratio_met'] else 'NOT met'}); against the reference's fit call"
        f" alone: {ratio_fit_only:.2f}\n"
        + "".join(
            f"  {state} compilation cache: median {m:.2f} over {len(by_cache[state])} pair(s)\n"
            for state, m in medians.items()
            if m is not None
        )
        + f"test accuracy: reference {ref_acc:.4f}, slipway {ours_acc:.4f} (goal >= reference - 0.005: "
        f"{'met' if summary['goal_accuracy_met'] else 'NOT met'})"
    )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


def _store(url: str):
    from slipway.store import open_store

    return open_store(url)


if __name__ == "__main__":
    main()
