"""End to end: a feed whose labels are systematically wrong - in its training *and* its test part -
never replaces the champion, and the reason is recorded.

Run 1 trains and promotes champion v1 on clean digits (its test split becomes the golden set).
Run 2 gets the poisoned feed (every class renamed): validation rejects it, naming the champion
witness (its accuracy collapses) and the class-conditional structure checks. Run 3 gets the same
feed with those validation checks switched off in the config, so the gate is the last line: the
champion does far worse on the new split than on the golden set, the gate rejects the candidate
as data suspect with both numbers, and nothing is registered or promoted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_digits

from slipway.registry import ModelRegistry
from slipway.steps.context import safe_run_id
from slipway.store import open_store
from tests.dags.test_retrain_e2e import airflow_db, run_dag, run_result, write_pipeline  # noqa: F401

pytestmark = pytest.mark.slow

PERMUTATION = np.array([3, 7, 0, 9, 1, 8, 2, 5, 4, 6])  # moves every class


def write_poisoned(folder: Path) -> None:
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")
    np.savez(folder / "poisoned.npz", x=x, y=PERMUTATION[digits.target])


def test_label_corrupted_feed_leaves_champion_untouched(
    airflow_db,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipelines = write_pipeline(tmp_path)
    write_poisoned(tmp_path / "data")
    store = open_store(f"file://{tmp_path / 'store'}")
    registry = ModelRegistry(store, "digits")

    run, states = run_dag(monkeypatch, pipelines)
    assert set(states.values()) == {"success"}, states
    assert registry.get_alias("champion") == 1
    golden = store.get_json("golden/digits/golden.json")
    assert golden["snapshot_key"] == run_result(store, run, "evaluate")["snapshot_key"]
    registered_accuracy = registry.get_version(1).metadata["test_accuracy"]
    assert registry.get_version(1).metadata["output_profile"]["rows"] == golden["rows"]
    reference_before = store.get_bytes("references/digits/reference.json")

    # Run 2: validation rejects the feed, naming the witness and the per-class structure.
    run, states = run_dag(monkeypatch, pipelines, partition="poisoned")
    assert states["validate"] == "failed" and states["train"] == "upstream_failed", states
    report = run_result(store, run, "validate")
    assert "witness.accuracy_drop" in report["failed"]
    assert any(check.startswith("drift.class_") for check in report["failed"])
    witness = report["champion_witness"]
    assert witness["version"] == 1 and witness["accuracy"] < 0.3
    message = next(m for m in report["failure_messages"] if m.startswith("witness.accuracy_drop"))
    assert (
        f"champion v1 accuracy on this partition {witness['accuracy']:.4f} vs {registered_accuracy:.4f}"
        in message
    )
    assert "labels or inputs do not match what the model learned" in message
    assert store.get_bytes(report["report_key"]).count(b"data:image/png") >= 1
    assert registry.versions() == [1] and registry.get_alias("champion") == 1
    assert store.get_bytes("references/digits/reference.json") == reference_before

    # Run 3: the same feed with those checks off - the gate rejects it as data suspect.
    config_file = pipelines / "digits.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["validation"] = {"structure_enabled": False, "champion_witness": False}
    config_file.write_text(yaml.safe_dump(config))
    run, states = run_dag(monkeypatch, pipelines, partition="poisoned")
    assert states["validate"] == "success" and states["gate"] == "success", states
    assert states["register"] == "skipped" and states["promote"] == "skipped"
    evaluation = run_result(store, run, "evaluate")
    new_split = evaluation["champion"]["accuracy"]
    on_golden = evaluation["golden"]["champion"]["accuracy"]
    assert on_golden - new_split > 0.5
    blessing = store.get_json(f"runs/digits/{safe_run_id(run.run_id)}/gate/blessing.json")
    assert blessing["blessed"] is False and blessing["result"] == "rejected"
    checks = {c["name"]: c for c in blessing["checks"]}
    assert checks["data_suspect"]["verdict"] == "fail"
    assert f"{new_split:.4f} vs {on_golden:.4f} on the golden set" in checks["data_suspect"]["detail"]
    assert checks["non_regression"]["detail"].startswith("on the golden set")
    assert any(r.startswith("data_suspect:") for r in blessing["reasons"])
    html = store.get_bytes(f"runs/digits/{safe_run_id(run.run_id)}/gate/report.html").decode()
    assert "Golden set vs new split" in html and "REJECTED" in html.upper()
    assert registry.versions() == [1] and registry.get_alias("champion") == 1
    assert store.get_json("golden/digits/golden.json") == golden
    print(
        f"\npoisoned feed: champion v1 accuracy new split {new_split:.4f} vs golden {on_golden:.4f};"
        f" candidate new split {evaluation['candidate']['accuracy']:.4f} vs golden"
        f" {evaluation['golden']['candidate']['accuracy']:.4f}; gate: {blessing['result']}; witness"
        f" (run 2): accuracy {witness['accuracy']:.4f} vs {registered_accuracy:.4f} at registration"
    )
