"""``slipway summary``: what happened in a run, from what its steps stored, for any stage the
run reached."""

from __future__ import annotations

from pathlib import Path

import pytest

from slipway.cli import main
from slipway.registry import ModelRegistry
from slipway.release import judge_candidate, promote_candidate
from slipway.steps.context import RunContext
from slipway.summary import summarize_run
from tests.data_fixtures import pipeline_config
from tests.results_fixtures import blessed_and_registered, evaluated_run, ingest_result, release_batch


@pytest.fixture
def config(tmp_path: Path):
    return pipeline_config(tmp_path / "store", gate={"min_accuracy": 0.5})


def test_a_run_that_did_nothing(config) -> None:
    text = summarize_run(RunContext.create(config, "run-0"))
    assert text.splitlines()[0] == "Slipway run run-0 of pipeline digits (model digits)"
    assert "dataset    (ingest did not run)" in text and "validation (did not run)" in text
    assert "(no version registered by this run); champion is (none)" in text
    assert "training" not in text and "gate " not in text


def test_a_promoted_run_against_a_champion(config) -> None:
    first = evaluated_run(config, "run-1", judged_against=None)
    promote_candidate(first, release_batch(), blessed_and_registered(first))
    run = evaluated_run(config, "run-2", judged_against=1, accuracy=0.93)
    run.write_result(
        "ingest", ingest_result("datasets/digits/abcdef1234567890", snapshot_hash="ab" * 32, rows=40)
    )
    version = blessed_and_registered(run)
    promote_candidate(run, release_batch(), version)

    text = summarize_run(run)
    assert "snapshot abababababab  train 40 / validation 0 / test 0 rows" in text
    assert "training   1 epochs in 1s: train accuracy 0.9000, validation accuracy n/a" in text
    assert "candidate test accuracy 0.9300" in text
    assert "champion v1 0.8500 on the same test set (delta +0.0800, McNemar p=0.01)" in text
    assert "gate       BLESSED" in text and "all checks passed" in text
    assert f"registry   version {version}; champion is v{version}" in text
    assert f"report       {run.store.uri(run.layout.final_report)}" in text
    assert ModelRegistry(run.store, "digits").get_version(version).uri in text


def test_a_rejected_run_names_the_reasons(config) -> None:
    run = evaluated_run(config, "run-9", judged_against=None, accuracy=0.3)
    assert not judge_candidate(run, release_batch()).blessed
    text = summarize_run(run)
    assert "gate       REJECTED" in text
    assert "accuracy_floor: accuracy 0.3000 is below the floor" in text
    assert "no champion yet" in text and "(no version registered by this run)" in text


def test_summary_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(
        "name: digits\nmodel_name: digits\nstore_url: file://./store\n"
        "data: {source: {kind: digits}, input_shape: [8, 8], num_classes: 10}\n"
    )
    assert main(["summary", "--config", str(path), "--run-id", "nothing-yet"]) == 0
    assert "Slipway run nothing-yet of pipeline digits" in capsys.readouterr().out
    assert main(["summary", "--config", str(tmp_path / "missing.yaml"), "--run-id", "r"]) == 65
