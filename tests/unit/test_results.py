"""The step-result contracts and the run layout: a result that breaks its model fails loudly,
naming the field; every key of a run comes from ``slipway.layout``; the CLI's bad-input paths
exit 65 with one clear line instead of a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from slipway.cli import main
from slipway.errors import EXIT_BAD_INPUT, BadInputError, StepInputMissing
from slipway.layout import RunLayout, counter_key, gate_decisions_counter, safe_run_id
from slipway.metrics import MetricsBatch, increment_total
from slipway.results import (
    EvaluateResult,
    IngestResult,
    ResultContractError,
    TrainWorkerResult,
    model_for,
    parse_result,
)
from slipway.steps.context import RunContext
from tests.data_fixtures import pipeline_config
from tests.results_fixtures import evaluate_result, ingest_result

REPO = Path(__file__).resolve().parents[2]


def test_result_round_trips_through_the_store(tmp_path: Path) -> None:
    ctx = RunContext.create(pipeline_config(tmp_path / "store"), "manual__2026-01-01T00:00:00+00:00")
    written = evaluate_result(ctx.prefix, "datasets/digits/abc", champion_version=4)
    key = ctx.write_result("evaluate", written)
    assert key == ctx.layout.result("evaluate") == f"{ctx.prefix}/evaluate/result.json"
    read = ctx.evaluate_result()
    assert read == written and read.champion_version == 4
    assert ctx.store.get_json(key)["candidate"]["per_class"][0]["class"] == 0  # the JSON name is kept


def test_missing_and_unknown_fields_name_the_field(tmp_path: Path) -> None:
    ctx = RunContext.create(pipeline_config(tmp_path / "store"), "r1")
    raw = ingest_result("datasets/digits/abc").dump()
    del raw["snapshot_hash"]
    ctx.store.put_json(ctx.layout.result("ingest"), raw)
    with pytest.raises(
        ResultContractError, match=r"ingest result at .*IngestResult.*snapshot_hash: Field required"
    ):
        ctx.ingest_result()
    with pytest.raises(ResultContractError, match=r"snapshot_hash_typo: Extra inputs are not permitted"):
        parse_result("ingest", {**raw, "snapshot_hash": "x", "snapshot_hash_typo": 1})
    assert issubclass(ResultContractError, BadInputError)  # a broken contract is not retried


def test_absent_result_is_step_input_missing_and_find_result_is_none(tmp_path: Path) -> None:
    ctx = RunContext.create(pipeline_config(tmp_path / "store"), "r1")
    with pytest.raises(StepInputMissing, match=r"no result of step 'train' for run 'r1'.*run train first"):
        ctx.train_result()
    assert ctx.find_result("evaluate", EvaluateResult) is None


def test_models_per_step() -> None:
    assert model_for("ingest") is IngestResult and model_for("evaluate") is EvaluateResult
    assert model_for("train", {"role": "worker", "epochs_completed": 3}) is TrainWorkerResult
    with pytest.raises(ValueError, match="no result model for step 'serve'"):
        model_for("serve")


def test_layout_builds_every_key_of_a_run() -> None:
    layout = RunLayout("fashion", "manual__2026-01-01T00:00:00+00:00")
    assert (
        layout.prefix
        == "runs/fashion/manual__2026-01-01T00_00_00_00_00"
        == f"runs/fashion/{safe_run_id(layout.run_id)}"
    )
    keys = {
        layout.result("ingest"),
        layout.data_docs,
        layout.model,
        layout.checkpoint,
        layout.evaluation_report,
        layout.predictions,
        layout.blessing,
        layout.final_report,
    }
    assert len(keys) == 8 and all(k.startswith(layout.prefix + "/") for k in keys)
    assert layout.blessing.endswith("/gate/blessing.json") and layout.final_report.endswith(
        "/gate/report.html"
    )
    assert (
        layout.gate_decisions
        == counter_key(gate_decisions_counter("fashion"))
        == "metrics/fashion/gate_decisions.json"
    )


def test_gate_totals_are_counted_where_the_layout_says(tmp_path: Path) -> None:
    ctx = RunContext.create(pipeline_config(tmp_path / "store"), "r1")
    increment_total(ctx.store, gate_decisions_counter(ctx.config.name), "blessed")
    assert ctx.store.get_json(ctx.layout.gate_decisions) == {"blessed": 1.0}
    from slipway.release import _set_gate_totals

    batch = MetricsBatch(pipeline="digits", step="gate")
    _set_gate_totals(ctx, batch)
    values = {s.labels["result"]: s.value for s in batch.samples if s.name == "slipway_gate_decisions_total"}
    assert values == {"blessed": 1.0, "rejected": 0.0, "forced": 0.0}


def _config_file(tmp_path: Path) -> Path:
    path = tmp_path / "digits.yaml"
    path.write_text(
        "name: digits\nmodel_name: digits\nstore_url: file://./store\n"
        "data: {source: {kind: digits}, input_shape: [8, 8], num_classes: 10}\n"
        "metrics: {textfile_dir: ./metrics}\n"
    )
    return path


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ("[1]", "--overrides must be a JSON object such as"),
        ('"epochs=3"', "--overrides must be a JSON object"),
        ("{epochs: 3", "--overrides is not valid JSON"),
        ('{"training": {"epochs": 0}}', "training.epochs: Input should be greater than 0"),
        ('{"training": {"epoch": 3}}', "training.epoch: unknown field"),
    ],
)
def test_bad_overrides_exit_65_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], overrides: str, message: str
) -> None:
    code = main(
        ["ingest", "--config", str(_config_file(tmp_path)), "--run-id", "r1", "--overrides", overrides]
    )
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT, err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_overrides_list_exits_65_from_the_command_line(tmp_path: Path) -> None:
    """The issue's case, as a process: ``python -m slipway ingest ... --overrides '[1]'``."""
    config = str(_config_file(tmp_path))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "slipway",
            "ingest",
            "--config",
            config,
            "--run-id",
            "r1",
            "--overrides",
            "[1]",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == EXIT_BAD_INPUT, done.stderr
    assert "Traceback" not in done.stderr
    assert (
        "error: --overrides must be a JSON object such as" in done.stderr and "got list '[1]'" in done.stderr
    )
