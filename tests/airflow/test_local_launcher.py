"""The local launcher runs a real ``python -m slipway`` with the config by value and reports exit
code and error; the result is read back from the store (the contract a pod follows too)."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from operators.launchers import StepOutcome, StepRequest, launcher_for, read_step_result
from slipway.config import LocalLauncherConfig, load_config
from slipway.errors import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "digits.yaml"
    config = {
        "name": "digits",
        "model_name": "digits",
        "store_url": f"file://{tmp_path / 'store'}",
        "data": {"source": {"kind": "digits", "scale": 16}, "input_shape": [8, 8], "num_classes": 10},
        "metrics": {"textfile_dir": str(tmp_path / "metrics")},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_success_streams_log_and_result_is_read_from_the_store(tmp_path: Path, caplog) -> None:
    config_file = write_config(tmp_path)
    config = load_config(config_file)
    config_file.unlink()  # the step gets the config by value, like a pod: no file to read
    launcher = launcher_for(LocalLauncherConfig())
    with caplog.at_level(logging.INFO):
        outcome = launcher.launch(StepRequest("ingest", config, "run-1"), logging.getLogger("t"))
    assert outcome.exit_code == EXIT_OK
    assert read_step_result(config, "run-1", "ingest")["rows"]["train"] > 0
    assert any("[ingest]" in message and "ingested" in message for message in caplog.messages)
    assert not any("SLIPWAY_RESULT" in message for message in caplog.messages)


def test_bad_input_exit_code_and_message(tmp_path: Path) -> None:
    # A config corrupted between worker and step (model_construct skips validation) is refused.
    bad = load_config(write_config(tmp_path)).model_copy(update={"name": "Not A Name"})
    outcome = launcher_for(LocalLauncherConfig()).launch(
        StepRequest("ingest", bad, "run-1"), logging.getLogger("t")
    )
    assert outcome.exit_code == EXIT_BAD_INPUT
    assert outcome.error_lines[0].startswith("error: invalid pipeline config")
    assert any(line.strip().startswith("name:") for line in outcome.error_lines)
    assert read_step_result(bad, "run-1", "ingest") is None


def test_missing_upstream_is_retryable(tmp_path: Path) -> None:
    outcome = launcher_for(LocalLauncherConfig()).launch(
        StepRequest("train", load_config(write_config(tmp_path)), "never-ingested"), logging.getLogger("t")
    )
    assert outcome.exit_code == EXIT_FAILURE
    assert "run ingest first" in "\n".join(outcome.error_lines)


def test_error_lines_keep_the_whole_message() -> None:
    tail = [
        "INFO noise",
        "error: 2 expectations failed",
        "  - values.missing: 3 rows",
        "  - values.max: 1 row",
    ]
    assert StepOutcome(EXIT_BAD_INPUT, tail).error_lines == tail[1:]
    assert StepOutcome(1, ["a", "b"]).error_lines == ["a", "b"]
