"""The local launcher runs a real ``python -m slipway`` and reports exit code, result and error."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from operators.launchers import StepOutcome, StepRequest, launcher_for
from slipway.config import LauncherConfig
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


def test_success_streams_log_and_returns_result(tmp_path: Path, caplog) -> None:
    launcher = launcher_for(LauncherConfig())
    with caplog.at_level(logging.INFO):
        outcome = launcher.launch(
            StepRequest("ingest", str(write_config(tmp_path)), "run-1"), logging.getLogger("t")
        )
    assert outcome.exit_code == EXIT_OK
    assert outcome.result["rows"]["train"] > 0
    assert any("[ingest]" in message and "ingested" in message for message in caplog.messages)


def test_bad_input_exit_code_and_message(tmp_path: Path) -> None:
    request = StepRequest(
        "ingest", str(write_config(tmp_path)), "run-1", overrides={"training": {"epochs": 0}}
    )
    outcome = launcher_for(LauncherConfig()).launch(request, logging.getLogger("t"))
    assert outcome.exit_code == EXIT_BAD_INPUT and outcome.result is None
    assert outcome.error_lines[0].startswith("error: invalid pipeline config")
    assert any("training.epochs" in line for line in outcome.error_lines)


def test_missing_upstream_is_retryable(tmp_path: Path) -> None:
    outcome = launcher_for(LauncherConfig()).launch(
        StepRequest("train", str(write_config(tmp_path)), "never-ingested"), logging.getLogger("t")
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
    assert StepOutcome(EXIT_BAD_INPUT, None, tail).error_lines == tail[1:]
    assert StepOutcome(1, None, ["a", "b"]).error_lines == ["a", "b"]


def test_kubernetes_launcher_is_refused_clearly() -> None:
    import pytest

    with pytest.raises(ValueError, match="launcher kind 'kubernetes' is not available"):
        launcher_for(LauncherConfig(kind="kubernetes"))
