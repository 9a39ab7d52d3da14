"""The launcher contract: run one ``python -m slipway <step>`` somewhere and report back.

A step gets its config *by value* (``--config-json``: resolved on the worker, env expanded and the
run's overrides applied), reads and writes only through the artifact store, and leaves its
``result.json`` there; the operator reads that result back from the store. Nothing depends on
the worker's files or on parsing the step's output, so the same contract holds for a local
subprocess, a pod and every worker of an Indexed Job.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from slipway.config import PipelineConfig


@dataclass(frozen=True)
class StepRequest:
    step: str
    config: PipelineConfig  # resolved: env expanded, overrides applied
    run_id: str
    partition: str | None = None
    # Step-specific options (``["--trial", "3"]`` for a sweep's trial), appended as given.
    extra_args: tuple[str, ...] = ()

    def argv(self) -> list[str]:
        """Arguments after ``python -m slipway``; identical for a subprocess and a pod."""
        return step_argv(self.step, self.config, self.run_id, self.partition, self.extra_args)


def step_argv(
    step: str,
    config: PipelineConfig,
    run_id: str,
    partition: str | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    args = [step, "--config-json", config_json(config), "--run-id", run_id]
    if partition:
        args += ["--partition", partition]
    return args + [str(a) for a in extra_args]


def config_json(config: PipelineConfig) -> str:
    return config.model_dump_json(exclude_none=False)


@dataclass
class StepOutcome:
    exit_code: int
    log_tail: list[str]

    @property
    def error_lines(self) -> list[str]:
        """The step's own error message (from its ``error:`` line on), else its last lines."""
        starts = [i for i, line in enumerate(self.log_tail) if line.startswith("error:")]
        return self.log_tail[starts[0] :] if starts else self.log_tail[-15:]


def read_step_result(config: PipelineConfig, run_id: str, step: str) -> dict[str, Any] | None:
    """The step's ``result.json`` from the store (``RunContext.result_key``), or None if absent."""
    from slipway.steps.context import RunContext
    from slipway.store import ArtifactNotFound

    ctx = RunContext.create(config, run_id)
    try:
        raw: dict[str, Any] = ctx.store.get_json(ctx.result_key(step))
    except ArtifactNotFound:
        return None
    return raw


class StepLog(Protocol):
    """Where a launcher streams the step's output: a ``logging.Logger`` or a task's ``self.log``."""

    def info(self, msg: Any, /, *args: Any) -> Any: ...


class StepLauncher(ABC):
    @abstractmethod
    def launch(self, request: StepRequest, log: StepLog) -> StepOutcome:
        """Run the step to completion, streaming its output into ``log``."""

    def cancel(self) -> None:  # noqa: B027 - optional hook, most launchers need nothing
        """Stop a running step (task killed from the UI, timeout)."""
