"""The launcher interface: run one ``python -m slipway <step>`` somewhere and report back."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol

from slipway.cli import RESULT_MARKER


@dataclass(frozen=True)
class StepRequest:
    step: str
    config_path: str
    run_id: str
    partition: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    # Step-specific options (``["--trial", "3"]`` for a sweep's trial), appended as given.
    extra_args: tuple[str, ...] = ()

    def argv(self) -> list[str]:
        """Arguments after ``python -m slipway``; identical for a subprocess and a pod."""
        args = [self.step, "--config", self.config_path, "--run-id", self.run_id]
        if self.partition:
            args += ["--partition", self.partition]
        if self.overrides:
            args += ["--overrides", json.dumps(self.overrides, sort_keys=True)]
        return args + list(self.extra_args)


@dataclass
class StepOutcome:
    exit_code: int
    result: dict[str, Any] | None
    log_tail: list[str]

    @property
    def error_lines(self) -> list[str]:
        """The step's own error message (from its ``error:`` line on), else its last lines."""
        starts = [i for i, line in enumerate(self.log_tail) if line.startswith("error:")]
        return self.log_tail[starts[0] :] if starts else self.log_tail[-15:]


def parse_result_line(line: str) -> dict[str, Any] | None:
    if line.startswith(RESULT_MARKER):
        return json.loads(line[len(RESULT_MARKER) :])
    return None


class StepLog(Protocol):
    """Where a launcher streams the step's output: a ``logging.Logger`` or a task's ``self.log``."""

    def info(self, msg: Any, /, *args: Any) -> Any: ...


class StepLauncher(ABC):
    @abstractmethod
    def launch(self, request: StepRequest, log: StepLog) -> StepOutcome:
        """Run the step to completion, streaming its output into ``log``."""

    def cancel(self) -> None:  # noqa: B027 - optional hook, most launchers need nothing
        """Stop a running step (task killed from the UI, timeout)."""
