"""The tuning DAG on ``launcher.kind: kubernetes``: every step a pod, and every trial a mapped pod.

The DAG files are parsed from ``dags/`` in a DagBag and round-tripped through Airflow's DAG
serialization; then ``dag.test()`` runs the study and its trials: the scheduler's own code expands
the mapped trial task into one task instance per slot of the study, and each instance's
``SlipwayPodOperator`` (unmapped by the Task SDK) sends its pod through the real ``kubernetes``
client to the HTTP stand-in API server, defers to the provider's ``KubernetesPodTrigger`` and,
resumed, reads *that trial's* result from the store. The stand-in's pods here do not train: each
leaves what a finished trial pod leaves (its ``result.json`` at
``layout.result_folder("tune-trial", {"trial": N})``); the trial step itself is tested in
``tests/unit/test_tuning.py`` and ``tests/dags/test_tune_e2e.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from operators.launchers import mapped_step_operator
from operators.launchers.kubernetes_job import SlipwayJobOperator
from operators.launchers.kubernetes_pod import SlipwayPodOperator
from operators.step import SlipwayStepOperator
from slipway.config import PipelineConfig, load_config
from slipway.layout import result_folder
from slipway.results import TuneTrialResult
from slipway.steps.context import RunContext, safe_run_id
from slipway.store import open_store
from tests.k8s.kube_standin import KubeStandIn, _container
from tests.k8s.test_kubernetes_pod import pipeline

REPO = Path(__file__).resolve().parents[2]
TRIALS = 3
STEP_TASKS = ("ingest", "validate", "select", "evaluate", "optimize")
# dag.test() runs the study and the trials; the other tasks are covered elsewhere.
NOT_RUN = "ingest|validate|select|evaluate|gate|optimize|register|promote"

TUNING = {
    "trials": TRIALS,
    "parallel": 2,
    "seed": 0,
    "space": {"dense_units": [16, 32], "learning_rate": {"low": 0.001, "high": 0.01, "log": True}},
    "leaner": {"enabled": True},
}


class TrialPodStandIn(KubeStandIn):
    """The API server stand-in whose trial pods finish at once, leaving their result in the store.

    A pod's ``args`` are exactly what the step would get (``tune-trial --config-json ... --run-id
    R --trial N``), so the result goes where the real step writes it, built from those args.
    """

    def _create_pod(self, namespace: str, body: dict[str, Any]) -> tuple[int, Any, str]:
        status, pod, ctype = super()._create_pod(namespace, body)
        container = body["spec"]["containers"][0]
        args = container["args"]
        assert args[0] == "tune-trial", args
        config = PipelineConfig.model_validate_json(args[args.index("--config-json") + 1])
        run_id = args[args.index("--run-id") + 1]
        trial = int(args[args.index("--trial") + 1])
        result = TuneTrialResult(
            study_id=safe_run_id(run_id),
            number=trial,
            params={"dense_units": 16 * (trial + 1)},
            state="complete",
            value=0.5 + trial / 100,
        )
        RunContext.create(config, run_id).write_result(result_folder("tune-trial", {"trial": trial}), result)
        with self._lock:
            stored = self.pods[(namespace, pod["metadata"]["name"])]
            stored["_behaviour"] = "finished"  # _refresh leaves the status below alone
            stored["status"] = {
                "phase": "Succeeded",
                "containerStatuses": [
                    _container(
                        container["name"],
                        container["image"],
                        terminated={"exitCode": 0, "reason": "Completed"},
                    )
                ],
            }
            self.logs[(namespace, pod["metadata"]["name"])] = f"trial {trial} complete\n"
        return status, pod, ctype


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeStandIn]:
    stand_in = TrialPodStandIn(scratch=tmp_path / "pods", behaviour="finished").start()
    yield stand_in
    stand_in.stop()


def write_pipeline(tmp_path: Path, kube: KubeStandIn, folder: Path, name: str, **launcher: Any) -> Path:
    """``<folder>/<name>.yaml``: the k8s tests' pipeline (GPU launcher, tolerations, restricted
    pods) with the given launcher settings and a small ``tuning`` section."""
    local = launcher.get("kind") == "local"
    settings = {} if local else launcher
    raw = yaml.safe_load(Path(pipeline(tmp_path, kube, **settings).source_path or "").read_text())
    raw.update(name=name, owner="tests", tuning=TUNING)
    if local:
        raw["launcher"] = {"kind": "local"}
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def dagbag(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("SLIPWAY_PIPELINES_DIR", str(folder))
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    return bag


def test_every_step_and_trial_is_a_pod_and_the_dag_survives_serialization(
    tmp_path: Path, kube: KubeStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.definitions.mappedoperator import MappedOperator
    from airflow.serialization.serialized_objects import DagSerialization

    folder = tmp_path / "pipelines"
    write_pipeline(tmp_path, kube, folder, "digits")
    write_pipeline(tmp_path, kube, folder, "digits_job", kind="kubernetes_job", workers=2, gpus=1)
    bag = dagbag(folder, monkeypatch)
    assert sorted(bag.dag_ids) == ["retrain_digits", "retrain_digits_job", "tune_digits", "tune_digits_job"]

    for name in ("digits", "digits_job"):
        tune = bag.dags[f"tune_{name}"]
        for task_id in STEP_TASKS:
            assert type(tune.get_task(task_id)) is SlipwayPodOperator, task_id
        trial = tune.get_task("trial")
        assert isinstance(trial, MappedOperator) and trial.operator_class is SlipwayPodOperator
        assert trial.partial_kwargs["step"] == "tune-trial"
        assert trial.partial_kwargs["config_path"] == str(folder / f"{name}.yaml")
        assert trial.max_active_tis_per_dagrun == TUNING["parallel"]
        assert trial.map_index_template == "trial {{ task.step_args[1] }}"
        assert [t.task_id for t in trial.iter_mapped_dependencies()] == ["study"]
        # validate and evaluate of the retraining DAG go through the same launcher
        retrain = bag.dags[f"retrain_{name}"]
        for task_id in ("ingest", "validate", "evaluate"):
            assert type(retrain.get_task(task_id)) is SlipwayPodOperator, task_id
    assert type(bag.dags["retrain_digits"].get_task("train")) is SlipwayPodOperator
    assert type(bag.dags["retrain_digits_job"].get_task("train")) is SlipwayJobOperator

    # What the scheduler and the UI get: validated against Airflow's schema, through JSON and back.
    tune = bag.dags["tune_digits"]
    serialized = json.loads(json.dumps(DagSerialization.to_dict(tune)))
    restored = DagSerialization.from_dict(serialized)
    assert set(restored.task_dict) == set(tune.task_dict)
    trial = restored.get_task("trial")
    assert trial.is_mapped and trial.task_type == "SlipwayPodOperator"
    assert trial.partial_kwargs["config_path"] == str(folder / "digits.yaml")
    assert trial.max_active_tis_per_dagrun == TUNING["parallel"]
    assert trial.map_index_template == "trial {{ task.step_args[1] }}"
    assert "trial" in restored.get_task("study").downstream_task_ids
    for task_id in STEP_TASKS:
        assert restored.get_task(task_id).task_type == "SlipwayPodOperator", task_id


def test_the_factory_maps_a_step_for_every_launcher_kind(tmp_path: Path, kube: KubeStandIn) -> None:
    from airflow.sdk import DAG
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    folder = tmp_path / "configs"
    operators = {"local": SlipwayStepOperator, "kubernetes": SlipwayPodOperator}
    operators["kubernetes_job"] = SlipwayPodOperator  # a mapped instance is one pod, never a Job
    for kind, operator in operators.items():
        extra = {"workers": 2} if kind == "kubernetes_job" else {}
        config = load_config(write_pipeline(tmp_path, kube, folder, "digits", kind=kind, **extra))
        assert config.launcher.kind == kind
        with DAG(f"mapped_{kind}", schedule=None):
            mapped = mapped_step_operator(
                task_id="trial",
                step="tune-trial",
                config=config,
                step_args=[["--trial", "0"], ["--trial", "1"]],
                max_active_tis_per_dagrun=1,
                map_index_template="trial {{ task.step_args[1] }}",
            )
        assert isinstance(mapped, MappedOperator) and mapped.operator_class is operator, kind
        # one instance: the plain operator with that trial's options
        instance: Any = mapped.unmap({"step_args": ["--trial", "1"]})
        assert instance.step_args == ["--trial", "1"], kind
        assert type(instance) is operator, kind
        if isinstance(instance, SlipwayPodOperator):
            assert instance.name == "slipway-digits-tune-trial-1"


@pytest.fixture(scope="module")
def airflow_db() -> None:
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


def test_each_mapped_trial_is_its_own_pod_and_reads_its_own_result(
    airflow_db: None, tmp_path: Path, kube: KubeStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "pipelines"
    config = load_config(write_pipeline(tmp_path, kube, folder, "digits"))
    run = dagbag(folder, monkeypatch).dags["tune_digits"].test(mark_success_pattern=NOT_RUN)
    states = {(ti.task_id, ti.map_index): str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "success", states

    # The scheduler expanded the trial task over the study's slots: one instance per trial.
    trial_tis = sorted(
        (ti for ti in run.get_task_instances() if ti.task_id == "trial"), key=lambda t: t.map_index
    )
    assert [ti.map_index for ti in trial_tis] == list(range(TRIALS))
    assert [ti.rendered_map_index for ti in trial_tis] == [f"trial {n}" for n in range(TRIALS)]
    assert all(str(ti.state) == "success" for ti in trial_tis)

    # One pod per trial, each carrying its own trial number, configured like every step pod.
    pods = kube.created("pods")
    assert len(pods) == TRIALS
    by_trial = {}
    for pod in pods:
        (container,) = pod["spec"]["containers"]
        args = container["args"]
        assert container["command"] == ["python", "-m", "slipway"]
        assert args[0] == "tune-trial" and args[-2] == "--trial"
        assert args[args.index("--run-id") + 1] == run.run_id
        passed = PipelineConfig.model_validate_json(args[2])  # the config travels by value
        assert passed.tuning == config.tuning and passed.launcher.kind == "kubernetes"
        by_trial[int(args[-1])] = pod
        assert container["image"] == "registry.example/slipway-step-gpu:1.0"
        assert container["resources"] == {
            "requests": {"cpu": "4", "memory": "16Gi"},
            "limits": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "2"},
        }
        spec = pod["spec"]
        assert spec["tolerations"] == [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
        assert spec["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["readOnlyRootFilesystem"] is True and sc["runAsNonRoot"] is True
        assert spec["automountServiceAccountToken"] is False
        labels = pod["metadata"]["labels"]
        assert labels["task_id"] == "trial" and labels["map_index"] == args[-1]
        assert pod["metadata"]["name"].startswith(f"slipway-digits-tune-trial-{args[-1]}")
    assert sorted(by_trial) == list(range(TRIALS))
    assert kube.pods == {}  # every finished pod was deleted

    # Each instance's XCom is its own trial's result, read from that trial's folder in the store.
    store = open_store(config.store_url)
    prefix = f"runs/digits/{safe_run_id(run.run_id)}"
    study = store.get_json(f"{prefix}/tune/study/study.json")  # the study task ran for real
    assert sorted(study["trials"]) == [str(n) for n in range(TRIALS)]
    results = _mapped_return_values(run, "trial")
    for n in range(TRIALS):
        stored = store.get_json(f"{prefix}/{result_folder('tune-trial', {'trial': n})}/result.json")
        assert stored["number"] == n and stored["value"] == pytest.approx(0.5 + n / 100)
        assert results[n] == TuneTrialResult.model_validate(stored).dump()


def _mapped_return_values(run: Any, task_id: str) -> dict[int, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(XComModel)
            .filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, key="return_value")
            .all()
        )
        return {row.map_index: _decoded(row.value) for row in rows}


def _decoded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
