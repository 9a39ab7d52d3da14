"""Every Prometheus metric Slipway exports, in one place, and how pipeline metrics leave a step.

Naming follows Prometheus conventions: ``slipway_`` prefix, base units, ``_total`` for counters,
``_seconds`` for durations; labels ``pipeline``, ``model``, ``version``, ``variant``, ``step``.

Batch steps do not live long enough to be scraped, so pipeline metrics are *emitted*:

* to a Pushgateway (``metrics.pushgateway_url``), grouped by job ``slipway`` + pipeline + step;
* otherwise to a node_exporter textfile (``<textfile_dir>/slipway_<pipeline>_<step>.prom``),
  written atomically so a scraper never reads half a file.

Counters across runs (gate decisions) are kept as running totals in the artifact store, so the
exported value is monotonic no matter which machine ran the step.
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, push_to_gateway

from slipway.config import MetricsConfig

if TYPE_CHECKING:
    from slipway.store import ArtifactStore

log = logging.getLogger(__name__)

_CAS_ATTEMPTS = 30

NAMESPACE = "slipway"

# name -> (type, help, label names). The single source of truth for metric names; dashboards,
# alert rules and tests refer to these strings.
METRICS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # pipeline health, one series per step
    "slipway_step_duration_seconds": ("gauge", "Wall time of the step's last run", ("pipeline", "step")),
    "slipway_step_success": ("gauge", "1 if the step's last run succeeded, else 0", ("pipeline", "step")),
    "slipway_step_last_run_timestamp_seconds": (
        "gauge",
        "Unix time the step last finished",
        ("pipeline", "step"),
    ),
    "slipway_step_last_success_timestamp_seconds": (
        "gauge",
        "Unix time the step last succeeded",
        ("pipeline", "step"),
    ),
    # ingest
    "slipway_ingest_rows": ("gauge", "Examples per split of the last snapshot", ("pipeline", "split")),
    # data validation
    "slipway_validation_success": ("gauge", "1 if the last validation passed, else 0", ("pipeline",)),
    "slipway_validation_failed_expectations": (
        "gauge",
        "Failed expectations in the last validation",
        ("pipeline",),
    ),
    "slipway_validation_rows": ("gauge", "Rows in the last validated snapshot", ("pipeline",)),
    "slipway_validation_drift": (
        "gauge",
        "Drift statistic of the last validation against the reference profile",
        ("pipeline", "statistic"),
    ),
    "slipway_validation_drift_threshold": (
        "gauge",
        "Threshold the drift statistic was held to (configured, raised to the sampling-noise floor)",
        ("pipeline", "statistic"),
    ),
    # training and evaluation
    "slipway_training_epochs": ("gauge", "Epochs completed by the last training run", ("pipeline", "model")),
    "slipway_training_duration_seconds": (
        "gauge",
        "Wall time of the last training run",
        ("pipeline", "model"),
    ),
    "slipway_model_accuracy": (
        "gauge",
        "Test accuracy of a model version on the current test set",
        ("pipeline", "model", "version", "variant"),
    ),
    "slipway_model_loss": (
        "gauge",
        "Test log loss of a model version on the current test set",
        ("pipeline", "model", "version", "variant"),
    ),
    "slipway_gate_decisions_total": (
        "counter",
        "Evaluation gate decisions by result (blessed, rejected, forced)",
        ("pipeline", "model", "result"),
    ),
    # orchestration
    "slipway_run_deadline_missed_timestamp_seconds": (
        "gauge",
        "Unix time a retraining run last missed its deadline (still running too long after it was queued)",
        ("pipeline",),
    ),
    # registry
    "slipway_registry_latest_version": ("gauge", "Highest registered model version", ("model",)),
    "slipway_registry_champion_version": ("gauge", "Version the champion alias points at", ("model",)),
}


@dataclass
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


@dataclass
class MetricsBatch:
    """Samples gathered during one step, emitted together at the end."""

    pipeline: str
    step: str
    samples: list[Sample] = field(default_factory=list)

    def set(self, name: str, value: float, **labels: str) -> None:
        if name not in METRICS:
            raise KeyError(f"unknown metric {name!r}: define it in slipway/metrics.py")
        _, _, label_names = METRICS[name]
        labels = {"pipeline": self.pipeline, **labels} if "pipeline" in label_names else dict(labels)
        missing = set(label_names) - set(labels)
        if missing:
            raise ValueError(f"metric {name} needs labels {sorted(missing)}")
        self.samples.append(Sample(name, {k: str(labels[k]) for k in label_names}, float(value)))

    def registry(self) -> CollectorRegistry:
        registry = CollectorRegistry()
        made: dict[str, Gauge | Counter] = {}
        # The last value set for a series wins, so each series is written once into a fresh
        # registry: a counter child starts at 0 and inc(total) exports the running total.
        latest = {(s.name, tuple(sorted(s.labels.items()))): s for s in self.samples}
        for sample in latest.values():
            kind, help_text, label_names = METRICS[sample.name]
            if sample.name not in made:
                if kind == "counter":
                    made[sample.name] = Counter(
                        sample.name.removesuffix("_total"), help_text, label_names, registry=registry
                    )
                else:
                    made[sample.name] = Gauge(sample.name, help_text, label_names, registry=registry)
            metric = made[sample.name]
            child = metric.labels(**sample.labels) if label_names else metric
            if kind == "counter":
                child.inc(sample.value)
            else:
                child.set(sample.value)
        return registry


def emit(batch: MetricsBatch, config: MetricsConfig) -> str:
    """Send the batch to the Pushgateway or write the textfile; returns where it went.

    Metrics are a side channel: a monitoring outage must not fail a retraining run, so errors
    are logged and swallowed.
    """
    registry = batch.registry()
    try:
        if config.pushgateway_url:
            push_to_gateway(
                config.pushgateway_url,
                job="slipway",
                grouping_key={"pipeline": batch.pipeline, "step": batch.step},
                registry=registry,
                timeout=5,
            )
            return config.pushgateway_url
        folder = Path(config.textfile_dir)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"slipway_{batch.pipeline}_{batch.step}.prom"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".prom")
        with os.fdopen(fd, "wb") as handle:
            handle.write(generate_latest(registry))
        os.replace(tmp, target)
        return str(target)
    except Exception as exc:
        log.warning("could not emit metrics for %s/%s: %s", batch.pipeline, batch.step, exc)
        return ""


def step_outcome(
    batch: MetricsBatch, *, succeeded: bool, duration_s: float, now: float | None = None
) -> None:
    """The health series every step reports."""
    now = time.time() if now is None else now
    batch.set("slipway_step_duration_seconds", duration_s, step=batch.step)
    batch.set("slipway_step_success", 1.0 if succeeded else 0.0, step=batch.step)
    batch.set("slipway_step_last_run_timestamp_seconds", now, step=batch.step)
    if succeeded:
        batch.set("slipway_step_last_success_timestamp_seconds", now, step=batch.step)


@contextmanager
def reporting_step(pipeline: str, step: str, config: MetricsConfig) -> Iterator[MetricsBatch]:
    """Collect a step's metrics and emit them with its outcome and duration, even when it fails."""
    batch = MetricsBatch(pipeline=pipeline, step=step)
    started = time.monotonic()
    succeeded = False
    try:
        yield batch
        succeeded = True
    finally:
        step_outcome(batch, succeeded=succeeded, duration_s=time.monotonic() - started)
        emit(batch, config)


def increment_total(store: ArtifactStore, key: str, label: str, amount: float = 1.0) -> float:
    """Add to a running total kept in the store (``metrics/<key>.json``); returns the new total.

    Compare-and-swap makes concurrent increments safe; a writer that loses backs off with
    jitter and retries. Used for counters such as gate decisions.
    """
    from slipway.store import ArtifactNotFound, PreconditionFailed

    path = f"metrics/{key}.json"
    for attempt in range(_CAS_ATTEMPTS):
        if attempt:
            time.sleep(random.uniform(0, min(0.5, 0.005 * 2**attempt)))
        try:
            raw, etag = store.get_with_etag(path)
            totals = json.loads(raw)
        except ArtifactNotFound:
            totals, etag = {}, None
        totals[label] = float(totals.get(label, 0.0)) + amount
        try:
            store.compare_and_swap(path, json.dumps(totals, sort_keys=True).encode(), etag)
            return totals[label]
        except PreconditionFailed:
            continue
    raise RuntimeError(f"could not update counter {path}: too much contention")
