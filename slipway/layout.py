"""Where a run's artifacts live in the store: every key of the run layout is built here, once.

Layout of one run (``runs/<pipeline>/<run>/``)::

    ingest/result.json        snapshot key + hash, row counts              (IngestResult)
    validate/result.json      every expectation, drift statistics          (ValidateResult)
    validate/data_docs/       the Great Expectations Data Docs site (index.html)
    train/result.json         curves, final metrics                        (TrainResult)
    train/model/              SavedModel + model.keras + metadata.json
    train/checkpoint/         resumable state while training runs
    evaluate/result.json      candidate and champion on the same test set  (EvaluateResult)
    evaluate/report.html      the report with a *pending* gate decision
    evaluate/predictions.npz  per-example outputs of both models
    gate/blessing.json        the gate's decision (``slipway.evaluation.gate.Blessing``)
    gate/report.html          the evaluation report with the decision filled in (of record)

Outside the run: ``metrics/<pipeline>/gate_decisions.json`` (running totals of gate results).
Why one module: a reader and a writer that each retype ``f"{prefix}/gate/blessing.json"`` drift
apart silently; a key built by one function changes everywhere at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

STEPS = ("ingest", "validate", "train", "evaluate")
RUNS_ROOT = "runs"
METRICS_ROOT = "metrics"
RESULT_FILE = "result.json"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_run_id(run_id: str) -> str:
    """Airflow run ids contain ``:`` and ``+``; keep keys portable across S3 and file systems."""
    cleaned = _UNSAFE.sub("_", run_id).strip("._")
    if not cleaned:
        raise ValueError(f"run id {run_id!r} has no usable characters")
    return cleaned


def result_folder(step: str, options: Mapping[str, Any] | None = None) -> str:
    """The folder of a step's ``result.json``: the step's name, plus its options for a step that
    runs many times in one run (a sweep's trials: ``tune-trial/trial-3``), so results never collide."""
    if not options:
        return step
    return step + "/" + "-".join(f"{name}-{value}" for name, value in sorted(options.items()))


def counter_key(counter: str) -> str:
    """The store key of a running total kept by ``slipway.metrics.increment_total``."""
    return f"{METRICS_ROOT}/{counter}.json"


def gate_decisions_counter(pipeline: str) -> str:
    """The counter name of a pipeline's gate decisions (``counter_key`` gives its key)."""
    return f"{pipeline}/gate_decisions"


def rollout_decisions_counter(pipeline: str) -> str:
    """The counter name of a pipeline's canary rollout decisions (``counter_key`` gives its key)."""
    return f"{pipeline}/rollout_decisions"


@dataclass(frozen=True)
class RunLayout:
    """The keys of one run of one pipeline."""

    pipeline: str
    run_id: str

    @property
    def prefix(self) -> str:
        return f"{RUNS_ROOT}/{self.pipeline}/{safe_run_id(self.run_id)}"

    def key(self, step: str, name: str) -> str:
        """A file ``name`` under the step's folder of this run."""
        return f"{self.prefix}/{step}/{name}"

    def result(self, step: str) -> str:
        return self.key(step, RESULT_FILE)

    @property
    def rollout_state(self) -> str:
        """The canary rollout's record (step, weights, analyses, decisions): what a restart resumes."""
        return self.key("canary", "rollout.json")

    @property
    def data_docs(self) -> str:
        return self.key("validate", "data_docs")

    @property
    def model(self) -> str:
        return self.key("train", "model")

    @property
    def checkpoint(self) -> str:
        return self.key("train", "checkpoint")

    @property
    def evaluation_report(self) -> str:
        return self.key("evaluate", "report.html")

    @property
    def predictions(self) -> str:
        return self.key("evaluate", "predictions.npz")

    @property
    def blessing(self) -> str:
        return self.key("gate", "blessing.json")

    @property
    def final_report(self) -> str:
        return self.key("gate", "report.html")

    @property
    def gate_decisions(self) -> str:
        return counter_key(gate_decisions_counter(self.pipeline))
