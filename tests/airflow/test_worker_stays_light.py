"""The Airflow worker's side of a run (DAG parse, gate, register, promote) never loads the ML stack.

The Airflow image installs Slipway without TensorFlow, Great Expectations, pandas or matplotlib
(``pip install .[airflow]``); this runs the whole worker side in a fresh interpreter and checks
which heavy modules it imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from slipway.data import Snapshot, Split, save_snapshot
from tests.results_fixtures import evaluate_result, train_result

HEAVY = ["tensorflow", "keras", "great_expectations", "pandas", "matplotlib", "sklearn"]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from airflow.dag_processing.dagbag import DagBag
    from slipway.config import parse_config
    from slipway.metrics import MetricsBatch
    from slipway.release import judge_candidate, promote_candidate, register_candidate
    from slipway.steps.context import RunContext
    from slipway.store import open_store

    bag = DagBag(dag_folder=sys.argv[2])
    assert not bag.import_errors, bag.import_errors
    config = parse_config(json.loads(sys.argv[1]))
    ctx = RunContext.create(config, "run-1")
    batch = MetricsBatch(pipeline=config.name, step="gate")
    blessing = judge_candidate(ctx, batch)
    version = register_candidate(ctx, batch)["version"]
    promote_candidate(ctx, batch, version)
    heavy = sorted(m for m in json.loads(sys.argv[3]) if m in sys.modules)
    print(json.dumps({"blessed": blessing.blessed, "heavy": heavy}))
    """
)


def test_gate_register_promote_without_ml_stack(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    store_url = f"file://{tmp_path / 'store'}"
    config = {
        "name": "digits",
        "model_name": "digits",
        "store_url": store_url,
        "data": {"source": {"kind": "digits"}, "input_shape": [8, 8], "num_classes": 2},
        "gate": {"min_accuracy": 0.5},
    }
    store = __import__("slipway.store", fromlist=["open_store"]).open_store(store_url)
    run = "runs/digits/run-1"
    rng = np.random.default_rng(0)

    def split(n: int) -> Split:
        return Split(rng.random((n, 8, 8), dtype="float32"), np.arange(n, dtype="int64") % 2)

    snapshot_key = save_snapshot(store, Snapshot(split(80), split(10), split(10)), "digits")
    store.put_bytes(f"{run}/train/model/saved_model.pb", b"pb")
    store.put_bytes(f"{run}/train/model/model.keras", b"keras")
    store.put_json(f"{run}/train/result.json", train_result(f"{run}/train/model").dump())
    from slipway.evaluation.report import BLESSING_END, BLESSING_START

    report = f"<!DOCTYPE html><html><body>{BLESSING_START}pending{BLESSING_END}</body></html>"
    store.put_bytes(f"{run}/evaluate/report.html", report.encode())
    store.put_json(f"{run}/evaluate/result.json", evaluate_result(run, snapshot_key).dump())
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(config), str(repo / "dags"), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        cwd=repo,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"blessed": True, "heavy": []}
    assert b"BLESSED" in store.get_bytes(f"{run}/gate/report.html")
