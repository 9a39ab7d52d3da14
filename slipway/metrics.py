"""Every Prometheus metric Slipway exports, in one place, and how pipeline metrics leave a step.

Naming follows Prometheus conventions: ``slipway_`` prefix, base units, ``_total`` for counters,
``_seconds`` for durations; labels ``pipeline``, ``model``, ``version``, ``variant``, ``step``.

Batch steps do not live long enough to be scraped, so pipeline metrics are *emitted*:

* to a Pushgateway (``metrics.pushgateway_url``), grouped by job ``slipway`` + pipeline + step;
* otherwise to a node_exporter textfile (``<textfile_dir>/slipway_<pipeline>_<step>.prom``),
  written atomically so a scraper never reads half a file.

Counters across runs (gate decisions) are kept as running totals in the artifact store, so the
exported value is monotonic no matter which machine ran the step.

Long-running processes (the model server, the local router) are *scraped*: ``collectors`` builds
the live prometheus-client objects for a set of names from ``METRICS`` (histograms included) in one
registry, and ``scrape`` renders it for ``GET /metrics``. Under several server worker processes
(``PROMETHEUS_MULTIPROC_DIR`` set) the scrape merges every worker's values.
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
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    pushadd_to_gateway,
)
from prometheus_client.parser import text_string_to_metric_families

from slipway.config import MetricsConfig

if TYPE_CHECKING:
    from slipway.store import ArtifactStore

log = logging.getLogger(__name__)

_CAS_ATTEMPTS = 30

PUSH_JOB = "slipway"  # the Pushgateway job of every pipeline group

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
    # whole runs, pushed by the Airflow callbacks (operators/callbacks.py) under step="run"
    "slipway_run_start_timestamp_seconds": (
        "gauge",
        "Unix time the pipeline's latest run started",
        ("pipeline",),
    ),
    "slipway_run_end_timestamp_seconds": (
        "gauge",
        "Unix time the pipeline's latest run ended",
        ("pipeline",),
    ),
    "slipway_run_duration_seconds": ("gauge", "Wall time of the pipeline's latest run", ("pipeline",)),
    "slipway_run_success": ("gauge", "1 if the pipeline's latest run succeeded, else 0", ("pipeline",)),
    "slipway_run_last_success_timestamp_seconds": (
        "gauge",
        "Unix time a run of the pipeline last succeeded",
        ("pipeline",),
    ),
    "slipway_pipeline_schedule_interval_seconds": (
        "gauge",
        "Seconds between two scheduled runs of the pipeline (absent when it has no schedule)",
        ("pipeline",),
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
    "slipway_training_samples_per_second": (
        "gauge",
        "Training examples processed per second by the last training run",
        ("pipeline", "model"),
    ),
    "slipway_training_final_loss": ("gauge", "Training loss after the last epoch", ("pipeline", "model")),
    "slipway_training_class_fraction": (
        "gauge",
        "Share of each class among the last training run's labels (the baseline for prediction drift)",
        ("pipeline", "model", "class"),
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
    # canary rollouts
    "slipway_canary_weight": (
        "gauge",
        "Share of traffic (percent) the canary of the pipeline's last rollout receives now",
        ("pipeline", "model"),
    ),
    "slipway_rollout_decisions_total": (
        "counter",
        "Canary analysis decisions by result (advance, hold, promote, rollback, skipped)",
        ("pipeline", "model", "result"),
    ),
    # tuning sweeps
    "slipway_tuning_trials": (
        "gauge",
        "Trials of the last sweep by final state (complete, pruned, failed, skipped)",
        ("pipeline", "model", "state"),
    ),
    "slipway_tuning_best_value": (
        "gauge",
        "Validation accuracy of the last sweep's best trial",
        ("pipeline", "model"),
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
    "slipway_registry_champion_promoted_timestamp_seconds": (
        "gauge",
        "Unix time the champion alias last moved (model age = time() - this)",
        ("model",),
    ),
    # model server (scraped); variant is stable or canary
    "slipway_serving_requests_total": (
        "counter",
        "Requests answered by the model server, by HTTP status code",
        ("model", "version", "variant", "code"),
    ),
    "slipway_serving_request_duration_seconds": (
        "histogram",
        "Time from a predict request's arrival to its answer",
        ("model", "version", "variant"),
    ),
    "slipway_serving_batch_size": (
        "histogram",
        "Instances per forward pass (micro-batch)",
        ("model", "version", "variant"),
    ),
    "slipway_serving_queue_depth": (
        "gauge",
        "Instances waiting for a forward pass",
        ("model", "version", "variant"),
    ),
    "slipway_serving_predictions_total": (
        "counter",
        "Instances answered, by predicted class (argmax index)",
        ("model", "version", "variant", "class"),
    ),
    "slipway_serving_model_info": (
        "gauge",
        "1 for the model version this server serves",
        ("model", "version", "variant"),
    ),
    # local traffic router (scraped)
    "slipway_router_requests_total": (
        "counter",
        "Requests the router forwarded, by backend and HTTP status code",
        ("backend", "code"),
    ),
    "slipway_router_request_duration_seconds": (
        "histogram",
        "Time from a request's arrival at the router to its answer, by backend",
        ("backend",),
    ),
    "slipway_router_backend_weight": (
        "gauge",
        "Traffic weight of the backend (share of requests = weight / sum of weights)",
        ("backend",),
    ),
}

# Histogram buckets (upper bounds); latencies in seconds, batch sizes in instances.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HISTOGRAM_BUCKETS: dict[str, tuple[float, ...]] = {
    "slipway_serving_request_duration_seconds": _LATENCY_BUCKETS,
    "slipway_serving_batch_size": (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
    "slipway_router_request_duration_seconds": _LATENCY_BUCKETS,
}
# How a gauge is merged across server worker processes (prometheus-client multiprocess mode).
_GAUGE_MULTIPROCESS_MODE: dict[str, Any] = {
    "slipway_serving_queue_depth": "livesum",
    "slipway_serving_model_info": "max",
    "slipway_router_backend_weight": "max",
}


def collectors(names: list[str], registry: CollectorRegistry) -> dict[str, Any]:
    """Live metric objects for ``names`` (all defined in ``METRICS``), registered in ``registry``
    (a Counter, Gauge or Histogram each, by the kind ``METRICS`` gives)."""
    made: dict[str, Any] = {}
    for name in names:
        if name not in METRICS:
            raise KeyError(f"unknown metric {name!r}: define it in slipway/metrics.py")
        kind, help_text, label_names = METRICS[name]
        if kind == "counter":
            made[name] = Counter(name.removesuffix("_total"), help_text, label_names, registry=registry)
        elif kind == "histogram":
            made[name] = Histogram(
                name, help_text, label_names, registry=registry, buckets=HISTOGRAM_BUCKETS[name]
            )
        else:
            mode = _GAUGE_MULTIPROCESS_MODE.get(name, "all")
            made[name] = Gauge(name, help_text, label_names, registry=registry, multiprocess_mode=mode)
    return made


def scrape(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The body and content type of ``GET /metrics``: this process's registry, or every worker's
    values merged when ``PROMETHEUS_MULTIPROC_DIR`` is set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return generate_latest(merged), CONTENT_TYPE_LATEST
    return generate_latest(registry), CONTENT_TYPE_LATEST


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
            if isinstance(child, Gauge):
                child.set(sample.value)
            else:
                child.inc(sample.value)
        return registry


def emit(batch: MetricsBatch, config: MetricsConfig) -> str:
    """Send the batch to the Pushgateway or write the textfile; returns where it went ("" on failure).

    Both backends have *push-add* semantics: the batch replaces the metrics of the same name in
    its group (job ``slipway``, ``pipeline``, ``step``) and leaves the others alone, so the
    Airflow callbacks and the step itself can both report into one group. The grouping key has
    no ``instance`` label: a batch job's metrics belong to the pipeline, not to the pod that ran
    it (Prometheus' advice for batch jobs; scrape the Pushgateway with ``honor_labels``).

    Metrics are a side channel: a monitoring outage must not fail a retraining run, so errors
    are logged and swallowed.
    """
    registry = batch.registry()
    try:
        if config.pushgateway_url:
            pushadd_to_gateway(
                config.pushgateway_url,
                job=PUSH_JOB,
                grouping_key={"pipeline": batch.pipeline, "step": batch.step},
                registry=registry,
                timeout=5,
            )
            return config.pushgateway_url
        folder = Path(config.textfile_dir)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"slipway_{batch.pipeline}_{batch.step}.prom"
        blocks = _family_blocks(target.read_text()) if target.exists() else {}
        blocks.update(_family_blocks(generate_latest(registry).decode()))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".prom")
        with os.fdopen(fd, "w") as handle:
            handle.write("".join(blocks[name] for name in sorted(blocks)))
        os.replace(tmp, target)
        return str(target)
    except Exception as exc:
        log.warning("could not emit metrics for %s/%s: %s", batch.pipeline, batch.step, exc)
        return ""


def _family_blocks(text: str) -> dict[str, str]:
    """Exposition text split into one block per metric family (``# HELP`` line onwards)."""
    blocks: dict[str, str] = {}
    name = ""
    for line in text.splitlines(keepends=True):
        if line.startswith("# HELP "):
            name = line.split()[2]
            blocks[name] = ""
        if name:
            blocks[name] += line
    return blocks


def read_textfiles(folder: str | Path) -> str:
    """Every ``slipway_*.prom`` of a textfile folder as one exposition (what node_exporter serves)."""
    families: dict[str, tuple[str, str, list[str]]] = {}
    for path in sorted(Path(folder).glob("slipway_*.prom")):
        for family in text_string_to_metric_families(path.read_text()):
            name = family.name + ("_total" if family.type == "counter" else "")
            entry = families.setdefault(name, (family.type, family.documentation, []))
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(sample.labels.items()))
                entry[2].append(f"{sample.name}{{{labels}}} {sample.value!r}\n")
    out = []
    for name, (kind, help_text, lines) in sorted(families.items()):
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
        out.extend(dict.fromkeys(lines))
    return "".join(out)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


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


RUN_STEP = "run"  # the group of the run-level series (no real step is called that)


def run_started(batch: MetricsBatch, *, started_at: float, interval_s: float | None) -> None:
    """What the first task of a run reports: when the run started, and the schedule's interval."""
    batch.set("slipway_run_start_timestamp_seconds", started_at)
    if interval_s:
        batch.set("slipway_pipeline_schedule_interval_seconds", interval_s)


def run_finished(
    batch: MetricsBatch, *, succeeded: bool, started_at: float, now: float | None = None
) -> None:
    """What the end of a run reports; ``time() - last success`` is the retraining staleness."""
    now = time.time() if now is None else now
    batch.set("slipway_run_end_timestamp_seconds", now)
    batch.set("slipway_run_duration_seconds", max(0.0, now - started_at))
    batch.set("slipway_run_success", 1.0 if succeeded else 0.0)
    if succeeded:
        batch.set("slipway_run_last_success_timestamp_seconds", now)


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
    from slipway.layout import counter_key
    from slipway.store import ArtifactNotFound, PreconditionFailed

    path = counter_key(key)
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
