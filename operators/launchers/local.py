"""Embedded default: run the step as a local subprocess of the Airflow worker.

The step's output is streamed line by line into the task log as it happens (training curves
appear live) and the exit code is handed back for the operator to turn into retry / no-retry;
the operator reads the step's result from the store, as it does for a pod.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys

from operators.launchers.base import StepLauncher, StepLog, StepOutcome, StepRequest
from slipway.cli import RESULT_MARKER
from slipway.config import LocalLauncherConfig


class LocalSubprocessLauncher(StepLauncher):
    def __init__(self, config: LocalLauncherConfig) -> None:
        self.python = config.python or sys.executable
        self._process: subprocess.Popen[str] | None = None

    def launch(self, request: StepRequest, log: StepLog) -> StepOutcome:
        command = [self.python, "-m", "slipway", *request.argv()]
        log.info("launching: %s -m slipway %s --run-id %s", self.python, request.step, request.run_id)
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        }
        tail: collections.deque[str] = collections.deque(maxlen=200)
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env=env,
        )
        assert self._process.stdout is not None
        for raw in self._process.stdout:
            line = raw.rstrip("\n")
            if line.startswith(RESULT_MARKER):
                continue  # the result is read from the store; its echo would only be noise here
            tail.append(line)
            log.info("[%s] %s", request.step, line)
        exit_code = self._process.wait()
        self._process = None
        return StepOutcome(exit_code=exit_code, log_tail=list(tail))

    def cancel(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
