"""Live: the ways people start a retraining run, through a running Airflow (``make airflow``).

One Airflow per metadata database (SQLite, then PostgreSQL in a throwaway cluster), reused by
every test of the module: a run triggered over REST with ``conf`` succeeds and registers a
version; an invalid ``conf`` is refused with 400 naming the field; a new-data asset event starts
a data-triggered run on the event's partition; a person uses the web UI's trigger form in
headless Chromium and opens the evaluation report from the task's button.

The pipeline is small on purpose: scikit-learn's digits as ``npz`` partitions, a 16-unit MLP.
Screenshots and the Airflow log go to ``$SLIPWAY_TEST_ARTIFACTS`` (default: a temporary folder),
printed by the tests (``pytest -s``) and kept after the run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from slipway.registry import ModelRegistry
from slipway.store import open_store
from tests.dags.test_retrain_e2e import write_partitions
from tests.live.airflow_server import PASSWORD, SYSTEM_PATH, AirflowServer, ApiError
from tests.live.postgres import PostgresCluster, postgres_bin
from tests.live.readme import run_readme

pytestmark = [pytest.mark.slow, pytest.mark.live]

DAG_ID = "retrain_digits"
RUN_TIMEOUT_S = 900  # a bound, not a measure: the machine may be shared and loaded
ARTIFACTS = Path(
    os.environ.get("SLIPWAY_TEST_ARTIFACTS") or tempfile.mkdtemp(prefix="slipway-live-artifacts-")
)


def write_pipeline(folder: Path) -> Path:
    write_partitions(folder / "data")
    shutil.copy(folder / "data" / "good.npz", folder / "data" / "fresh.npz")
    config = {
        "name": "digits",
        "model_name": "digits",
        "owner": "tests",
        "store_url": f"file://{folder / 'store'}",
        "data": {
            "source": {"kind": "npz", "uri": str(folder / "data" / "{partition}.npz")},
            "split": {"validation_fraction": 0.1, "test_fraction": 0.25, "seed": 0},
            "input_shape": [8, 8],
            "num_classes": 10,
        },
        "training": {
            "layers": [{"type": "flatten"}, {"type": "dense", "units": 16, "activation": "relu"}],
            "optimizer": {"name": "adam", "learning_rate": 0.02},
            "epochs": 2,
            "batch_size": 64,
        },
        "gate": {"min_accuracy": 0.5, "max_accuracy_drop": 0.5, "bootstrap_samples": 100},
        "metrics": {"textfile_dir": str(folder / "metrics")},
        # New data starts a run. (No cron here: with catchup off, Airflow starts the latest past
        # cron tick as soon as the DAG appears; tests/dags/test_scheduling.py covers cron + data.)
        "orchestration": {
            "data_asset": f"file://{folder / 'data'}",
            "retries": 1,
            "retry_delay_seconds": 5,
            # Six seconds: every run here misses it, so the deadline alert fires for real.
            "run_deadline_minutes": 0.1,
        },
    }
    pipelines = folder / "pipelines"
    pipelines.mkdir()
    (pipelines / "digits.yaml").write_text(yaml.safe_dump(config))
    return pipelines


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def airflow(request: pytest.FixtureRequest):
    folder = Path(tempfile.mkdtemp(prefix=f"slipway-live-{request.param}-"))
    pipelines = write_pipeline(folder)
    cluster = None
    if request.param == "postgres":
        if postgres_bin() is None:
            pytest.skip("Debian postgresql is not installed")
        cluster = PostgresCluster.start()
        conn = cluster.url
    else:
        conn = f"sqlite:///{folder / 'airflow' / 'airflow.db'}"
    server = AirflowServer(
        home=folder / "airflow",
        sql_alchemy_conn=conn,
        extra_env={"SLIPWAY_PIPELINES_DIR": str(pipelines), "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    server.database = request.param  # type: ignore[attr-defined]
    server.folder = folder  # type: ignore[attr-defined]
    started = time.monotonic()
    try:
        server.start()
        server.wait_for(f"{DAG_ID} to be parsed", lambda: _dag_ready(server), timeout_s=180)
        print(f"\n[{request.param}] Airflow healthy on {server.url} after {time.monotonic() - started:.0f}s")
        yield server
    finally:
        left = server.stop()
        log_copy = ARTIFACTS / f"make-airflow-{request.param}.log"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        if server.log_path.exists():
            shutil.copy(server.log_path, log_copy)
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
        assert left == [], f"processes still alive after stop: {left}"


def _dag_ready(server: AirflowServer) -> bool:
    try:
        dag = server.request("GET", f"/api/v2/dags/{DAG_ID}")
    except ApiError:
        return False
    return not dag["is_paused"]


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def registry_of(server: AirflowServer) -> ModelRegistry:
    return ModelRegistry(open_store(f"file://{server.folder / 'store'}"), "digits")  # type: ignore[attr-defined]


def test_components_started_from_a_shell_without_the_venv(airflow: AirflowServer) -> None:
    """`make airflow` without an activated venv: standalone's `airflow ...` subprocesses all run."""
    health = airflow.health()
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", health
    commands = [_command_line(pid) for pid in airflow.process_tree()]
    for component in ("scheduler", "dag-processor", "api-server", "triggerer"):
        # "<venv>/bin/airflow scheduler", or the title a component gives itself ("airflow api_server -- ...")
        names = (f"bin/airflow {component}", f"airflow {component.replace('-', '_')}")
        assert any(name in command for command in commands for name in names), (component, commands)
    # ... started from a shell whose PATH has no virtualenv (see AirflowServer.start).
    assert (
        Path(f"/proc/{airflow.process.pid}/environ")
        .read_bytes()
        .split(b"\0")
        .count(  # type: ignore[union-attr]
            f"PATH={SYSTEM_PATH}".encode()
        )
        == 1
    )


def test_rest_trigger_with_conf_registers_a_version(airflow: AirflowServer) -> None:
    """The README's curl lines: token, trigger with conf, then the run's state and decisions."""
    triggered = time.monotonic()
    (run_id,) = run_readme(
        airflow,
        ["Token", "Trigger a run with conf (the form's fields)"],
        {"retrain_fashion_mnist": DAG_ID, '{"epochs": 5}': '{"epochs": 3, "partition": "good"}'},
        echo="$RUN",
    )
    run = airflow.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id)}")
    assert run["conf"] == {"epochs": 3, "partition": "good"} and run["run_type"] == "manual"
    done = airflow.wait_run_finished(DAG_ID, quote(run_id), RUN_TIMEOUT_S)
    took = time.monotonic() - triggered
    assert done["state"] == "success", (airflow.task_states(DAG_ID, quote(run_id)), airflow.log_tail())
    print(f"\n[{airflow.database}] REST-triggered run {run_id}: trigger -> success in {took:.0f}s")  # type: ignore[attr-defined]

    state, gate, version = run_readme(
        airflow,
        ["Token", "A run's state and decisions: the gate's Blessing, the registered version"],
        {"retrain_fashion_mnist": DAG_ID},
        env={"RUN": run_id},
    )
    assert state == "success"
    assert json.loads(gate) == {"blessed": True, "result": "blessed", "forced": False}
    registry = registry_of(airflow)
    assert int(version) == registry.versions()[-1] == 1
    assert registry.get_alias("champion") == 1
    # The conf's epochs reached the training step.
    assert airflow.xcom(DAG_ID, quote(run_id), "train")["epochs_completed"] == 3


def test_deadline_alert_fires_for_an_overdue_run(airflow: AirflowServer) -> None:
    """The scheduler sees the run's deadline pass; the triggerer runs Slipway's callback."""
    textfile = airflow.folder / "metrics" / "slipway_digits_deadline.prom"  # type: ignore[attr-defined]
    airflow.wait_for("the deadline metric", textfile.exists, timeout_s=180)
    assert 'slipway_run_deadline_missed_timestamp_seconds{pipeline="digits"}' in textfile.read_text()


@pytest.mark.parametrize(
    ("conf", "field", "words"),
    [
        ({"epochs": 0}, "epochs", "less than the minimum of 1"),
        ({"learning_rate": "fast"}, "learning_rate", "is not of type 'number'"),
        ({"partition": "../../etc/passwd"}, "partition", "does not match"),
    ],
)
def test_invalid_conf_is_refused_naming_the_field(
    airflow: AirflowServer, conf, field: str, words: str
) -> None:
    before = airflow.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns")["total_entries"]
    with pytest.raises(ApiError) as refused:
        airflow.request("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": conf})
    assert refused.value.status == 400
    detail = refused.value.body["detail"]
    assert f"Invalid input for param {field}" in detail and words in detail, detail
    assert airflow.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns")["total_entries"] == before


def test_browser_trigger_form_and_report(airflow: AirflowServer) -> None:
    from tests.live.browser import trigger_from_ui

    shots = ARTIFACTS / airflow.database  # type: ignore[attr-defined]
    steps = trigger_from_ui(
        airflow, DAG_ID, "admin", PASSWORD, epochs=4, screenshots=shots, run_timeout_s=RUN_TIMEOUT_S
    )
    print(f"\n[{airflow.database}] browser steps:\n  " + "\n  ".join(steps))  # type: ignore[attr-defined]
    print(f"[{airflow.database}] screenshots: {sorted(str(p) for p in shots.glob('*.png'))}")  # type: ignore[attr-defined]
    assert (shots / "trigger-form.png").stat().st_size > 10_000
    assert (shots / "evaluation-report.png").stat().st_size > 10_000


def test_asset_event_starts_a_data_triggered_run_on_its_partition(airflow: AirflowServer) -> None:
    """Last in the module: the run is seen to start and ingest the event's partition; the
    fixture's teardown stops Airflow under it (the REST and browser runs cover the rest)."""
    (event_json,) = run_readme(
        airflow,
        ["Token", "Report a new data partition (a pipeline with orchestration.data_asset)"],
        {"fashion_mnist_data": "digits_data", "2026-05-01": "fresh"},
    )
    event = json.loads(event_json)
    assert event["extra"]["partition"] == "fresh"

    def data_triggered_run():
        runs = airflow.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?run_type=asset_triggered")["dag_runs"]
        return runs[0] if runs else None

    run = airflow.wait_for("the data-triggered run", data_triggered_run, timeout_s=180)
    print(f"\n[{airflow.database}] asset event {event['id']} started run {run['dag_run_id']}")  # type: ignore[attr-defined]

    def ingested():
        state = airflow.task_states(DAG_ID, run["dag_run_id"]).get("ingest")
        assert state not in ("failed", "upstream_failed"), airflow.log_tail()
        return state == "success"

    airflow.wait_for("the data-triggered run's ingest", ingested, timeout_s=RUN_TIMEOUT_S)
    ingest = airflow.xcom(DAG_ID, run["dag_run_id"], "ingest")
    assert ingest["source"]["partition"] == "fresh", ingest
    assert ingest["source"]["uri"].endswith("{partition}.npz")
