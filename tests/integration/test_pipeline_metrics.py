"""Pipeline metrics leave a step the two documented ways: a real Pushgateway, or a textfile."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from slipway import metrics
from slipway.config import MetricsConfig
from slipway.store import open_store

PUSHGATEWAY = shutil.which("prometheus-pushgateway") or "/usr/bin/prometheus-pushgateway"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    if not Path(PUSHGATEWAY).exists():
        pytest.fail("prometheus-pushgateway is not installed (make install installs it)")
    port = _free_port()
    process = subprocess.Popen(
        [PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}", f"--persistence.file={tmp_path / 'pg.data'}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/-/ready", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("pushgateway did not become ready")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _samples(text: str, ignore: tuple[str, ...] = ("job", "instance")) -> dict[tuple[str, frozenset], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if k not in ignore}
            out[(sample.name, frozenset(labels.items()))] = sample.value
    return out


def _batch() -> metrics.MetricsBatch:
    batch = metrics.MetricsBatch(pipeline="digits", step="validate")
    batch.set("slipway_validation_success", 0)
    batch.set("slipway_validation_failed_expectations", 2)
    batch.set("slipway_validation_drift", 0.031, statistic="label_tv")
    batch.set("slipway_gate_decisions_total", 3, model="digits", result="rejected")
    metrics.step_outcome(batch, succeeded=False, duration_s=1.5, now=1_700_000_000)
    return batch


def test_push_to_a_real_pushgateway(pushgateway: str) -> None:
    where = metrics.emit(_batch(), MetricsConfig(pushgateway_url=pushgateway))
    assert where == pushgateway
    text = urllib.request.urlopen(f"{pushgateway}/metrics", timeout=5).read().decode()
    # The Pushgateway adds the grouping key (job, pipeline, step) to every series of the group.
    samples = _samples(text, ignore=("job", "instance", "step"))
    assert samples[("slipway_validation_failed_expectations", frozenset({("pipeline", "digits")}))] == 2
    assert (
        samples[("slipway_validation_drift", frozenset({("pipeline", "digits"), ("statistic", "label_tv")}))]
        == 0.031
    )
    assert samples[("slipway_step_success", frozenset({("pipeline", "digits")}))] == 0
    key = (
        "slipway_gate_decisions_total",
        frozenset({("pipeline", "digits"), ("model", "digits"), ("result", "rejected")}),
    )
    assert samples[key] == 3


def test_textfile_when_no_pushgateway(tmp_path: Path) -> None:
    where = metrics.emit(_batch(), MetricsConfig(textfile_dir=str(tmp_path)))
    assert where == str(tmp_path / "slipway_digits_validate.prom")
    samples = _samples(Path(where).read_text())
    assert (
        samples[("slipway_step_duration_seconds", frozenset({("pipeline", "digits"), ("step", "validate")}))]
        == 1.5
    )
    assert not list(tmp_path.glob(".tmp-*"))  # written atomically


def test_unreachable_pushgateway_does_not_fail_the_step() -> None:
    assert metrics.emit(_batch(), MetricsConfig(pushgateway_url=f"http://127.0.0.1:{_free_port()}")) == ""


def test_unknown_metric_or_missing_label_is_an_error() -> None:
    batch = metrics.MetricsBatch(pipeline="p", step="s")
    with pytest.raises(KeyError, match=r"define it in slipway/metrics\.py"):
        batch.set("slipway_not_a_metric", 1)
    with pytest.raises(ValueError, match="statistic"):
        batch.set("slipway_validation_drift", 1)


def test_running_totals_are_exact_under_concurrency(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = open_store(f"file://{tmp_path}")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: metrics.increment_total(store, "p/gate", "blessed"), range(40)))
    assert store.get_json("metrics/p/gate.json") == {"blessed": 40.0}


def test_metric_names_follow_conventions() -> None:
    for name, (kind, help_text, labels) in metrics.METRICS.items():
        assert name.startswith("slipway_") and help_text
        assert (kind == "counter") == name.endswith("_total"), name
        assert all(
            label
            in {"pipeline", "model", "version", "variant", "step", "statistic", "result", "split", "class"}
            | {"code", "backend"}  # serving and router
            | {"state"}  # tuning trials by state
            for label in labels
        ), name


def _two_reports(config: MetricsConfig) -> None:
    """The step reports its figures, then the Airflow callback reports the task's outcome."""
    step = metrics.MetricsBatch(pipeline="digits", step="train")
    step.set("slipway_training_final_loss", 0.25, model="digits")
    metrics.step_outcome(step, succeeded=True, duration_s=9.0, now=1_700_000_000)
    metrics.emit(step, config)
    callback = metrics.MetricsBatch(pipeline="digits", step="train")
    metrics.step_outcome(callback, succeeded=False, duration_s=12.0, now=1_700_000_100)
    metrics.emit(callback, config)


def test_pushadd_keeps_the_other_metrics_of_the_group(pushgateway: str) -> None:
    _two_reports(MetricsConfig(pushgateway_url=pushgateway))
    text = urllib.request.urlopen(f"{pushgateway}/metrics", timeout=5).read().decode()
    samples = _samples(text, ignore=())
    group = {("job", "slipway"), ("instance", ""), ("pipeline", "digits"), ("step", "train")}
    assert samples[("slipway_training_final_loss", frozenset(group | {("model", "digits")}))] == 0.25
    assert samples[("slipway_step_success", frozenset(group))] == 0  # replaced by the later report
    assert samples[("slipway_step_duration_seconds", frozenset(group))] == 12.0
    assert ("slipway_step_last_success_timestamp_seconds", frozenset(group)) in samples


def test_textfile_merges_like_pushadd(tmp_path: Path) -> None:
    _two_reports(MetricsConfig(textfile_dir=str(tmp_path)))
    samples = _samples((tmp_path / "slipway_digits_train.prom").read_text())
    step = frozenset({("pipeline", "digits"), ("step", "train")})
    assert (
        samples[("slipway_training_final_loss", frozenset({("pipeline", "digits"), ("model", "digits")}))]
        == 0.25
    )
    assert samples[("slipway_step_success", step)] == 0
    assert samples[("slipway_step_last_success_timestamp_seconds", step)] == 1_700_000_000
    # The folder reads back as one exposition, as node_exporter's textfile collector serves it.
    merged = _samples(metrics.read_textfiles(tmp_path))
    assert merged[("slipway_step_duration_seconds", step)] == 12.0


def test_callbacks_report_a_failed_task_and_never_raise(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from operators.callbacks import PipelineMetricsCallbacks, schedule_interval_seconds

    config = tmp_path / "p.yaml"
    config.write_text(
        f"name: digits\nmodel_name: digits\nschedule: '0 3 * * 1'\nstore_url: file://{tmp_path}/store\n"
        f"data: {{source: {{kind: digits}}, input_shape: [8, 8], num_classes: 10}}\n"
        f"metrics: {{textfile_dir: {tmp_path}/m}}\n"
    )
    callbacks = PipelineMetricsCallbacks(str(config))
    ti = SimpleNamespace(task_id="train", start_date=None)
    callbacks.task_failed({"ti": ti})
    callbacks.task_started({"task": SimpleNamespace(upstream_task_ids=set()), "dag_run": None})
    callbacks.run_failed({"dag_run": None})
    samples = _samples(metrics.read_textfiles(tmp_path / "m"))
    assert samples[("slipway_step_success", frozenset({("pipeline", "digits"), ("step", "train")}))] == 0
    assert samples[("slipway_run_success", frozenset({("pipeline", "digits")}))] == 0
    assert (
        samples[("slipway_pipeline_schedule_interval_seconds", frozenset({("pipeline", "digits")}))]
        == 7 * 86400
    )
    assert ("slipway_run_last_success_timestamp_seconds", frozenset({("pipeline", "digits")})) not in samples
    assert schedule_interval_seconds(None) is None and schedule_interval_seconds("@daily") == 86400
    # A broken config or an unreachable Pushgateway is logged, never raised into the task.
    PipelineMetricsCallbacks(str(tmp_path / "missing.yaml")).task_failed({"ti": ti})
