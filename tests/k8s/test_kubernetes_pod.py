"""``launcher.kind: kubernetes`` through the provider's KubernetesPodOperator and the real clients.

The operator creates the pod against the HTTP stand-in API server and defers; the provider's
``KubernetesPodTrigger`` (kubernetes_asyncio) polls it; a *fresh* operator instance - as after a
real deferral - resumes in ``trigger_reentry``, streams the logs, deletes the pod and reads the
step's result from the store. Failures must name their reason.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from operators.launchers import step_operator
from operators.launchers.kubernetes_pod import SlipwayPodOperator, pod_failure_reason
from slipway.config import PipelineConfig, load_config
from slipway.errors import EXIT_BAD_INPUT
from tests.k8s.kube_standin import KubeStandIn

try:
    from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred
except ImportError:  # pragma: no cover - older layouts
    from airflow.exceptions import AirflowException, AirflowFailException, TaskDeferred


@pytest.fixture
def kube(tmp_path: Path):
    stand_in = KubeStandIn(scratch=tmp_path / "pods").start()
    yield stand_in
    stand_in.stop()


def pipeline(tmp_path: Path, kube: KubeStandIn, **launcher: Any) -> PipelineConfig:
    path = tmp_path / "digits.yaml"
    raw = {
        "name": "digits",
        "model_name": "digits",
        "store_url": f"file://{tmp_path / 'store'}",
        "data": {"source": {"kind": "digits", "scale": 16}, "input_shape": [8, 8], "num_classes": 10},
        "metrics": {"textfile_dir": str(tmp_path / "metrics")},
        "launcher": {
            "kind": "kubernetes",
            "namespace": "slipway",
            "image": "registry.example/slipway-step-gpu:1.0",
            "config_file": str(kube.kubeconfig(tmp_path / "kubeconfig")),
            "gpus": 2,
            "resources": {
                "cpu_request": "4",
                "memory_request": "16Gi",
                "cpu_limit": "8",
                "memory_limit": "32Gi",
            },
            "node_selector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "image_pull_secrets": ["regcred"],
            "priority_class": "slipway-training",
            "service_account": "slipway-step",
            "env": {"AWS_ENDPOINT_URL": "http://minio.storage:9000"},
            "env_from_secrets": ["slipway-s3"],
            "poll_interval_seconds": 0.2,
            "schedule_timeout_seconds": 2,
            "startup_timeout_seconds": 2,
            **launcher,
        },
    }
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


class _TI:
    dag_id, task_id, try_number, map_index = "retrain_digits", "step", 1, -1

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def context(run_id: str = "manual__1") -> dict[str, Any]:
    return {"ti": _TI(), "run_id": run_id, "params": {}, "dag": None}


def run_deferred(config: PipelineConfig, step: str, ctx: dict[str, Any]) -> Any:
    """execute -> defer -> trigger fires -> a new operator instance resumes (as Airflow does)."""
    op = step_operator(task_id=step, step=step, config=config)
    assert isinstance(op, SlipwayPodOperator) and op.deferrable
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx)
    event = asyncio.run(_first_event(deferred.value.trigger))
    resumed = step_operator(task_id=step, step=step, config=config)
    return getattr(resumed, deferred.value.method_name)(ctx, event)


async def _first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("the trigger ended without an event")


def test_train_pod_spec_gpu_tolerations_selector_env_and_restricted_security(tmp_path: Path, kube) -> None:
    config = pipeline(tmp_path, kube)
    kube.behaviour = "oom"  # only the request matters here
    with pytest.raises(AirflowException):
        run_deferred(config, "train", context())
    (pod,) = kube.created("pods")
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert pod["metadata"]["namespace"] == "slipway"
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "step-train"
    assert container["image"] == "registry.example/slipway-step-gpu:1.0"
    assert container["command"] == ["python", "-m", "slipway"]
    args = container["args"]
    assert args[0] == "train" and args[1] == "--config-json" and args[3:] == ["--run-id", "manual__1"]
    passed = PipelineConfig.model_validate_json(args[2])  # the config travels by value
    assert passed.store_url == config.store_url and passed.launcher.kind == "kubernetes"
    assert container["resources"] == {
        "requests": {"cpu": "4", "memory": "16Gi"},
        "limits": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "2"},
    }
    assert spec["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert spec["priorityClassName"] == "slipway-training"
    assert spec["serviceAccountName"] == "slipway-step"
    assert spec["automountServiceAccountToken"] is False
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["AWS_ENDPOINT_URL"] == "http://minio.storage:9000" and env["HOME"] == "/tmp"
    assert container["envFrom"] == [{"secretRef": {"name": "slipway-s3"}}]
    # Pod Security "restricted"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["readOnlyRootFilesystem"] is True and sc["runAsNonRoot"] is True
    assert {"name": "scratch", "mountPath": "/tmp"} in container["volumeMounts"]


def test_validate_and_evaluate_pods_hold_no_gpu(tmp_path: Path, kube) -> None:
    config = pipeline(tmp_path, kube)
    kube.behaviour = "oom"
    with pytest.raises(AirflowException):
        run_deferred(config, "evaluate", context())
    (pod,) = kube.created("pods")
    assert "nvidia.com/gpu" not in pod["spec"]["containers"][0]["resources"]["limits"]


def test_step_runs_in_the_pod_and_result_comes_from_the_store(tmp_path: Path, kube, caplog) -> None:
    config = pipeline(tmp_path, kube)
    kube.behaviour = "run"
    result = run_deferred(config, "ingest", context("manual__ok"))
    assert result["rows"]["train"] > 0 and result["snapshot_key"]
    assert kube.pods == {}  # the finished pod was deleted
    deletes = [r for r in kube.requests if r.method == "DELETE" and "/pods/" in r.path]
    assert len(deletes) == 1


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        ("image_pull", "ImagePullBackOff"),
        ("unschedulable", "Insufficient nvidia.com/gpu"),
        ("oom", "OOMKilled"),
        ("evicted", "evicted by the node"),
    ],
)
def test_a_pod_that_cannot_run_fails_with_its_reason(
    tmp_path: Path, kube, behaviour: str, reason: str
) -> None:
    config = pipeline(tmp_path, kube)
    kube.behaviour = behaviour
    with pytest.raises(AirflowException, match=reason) as failed:
        run_deferred(config, "train", context())
    assert not isinstance(failed.value, AirflowFailException)  # infrastructure: Airflow retries


def test_a_step_that_rejects_its_input_fails_without_retry(tmp_path: Path, kube) -> None:
    config = pipeline(tmp_path, kube)
    kube.behaviour = "run"
    ctx = context("manual__bad")
    ctx["params"] = {}
    op = step_operator(task_id="ingest", step="ingest", config=config, partition="missing")
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx)
    event = asyncio.run(_first_event(deferred.value.trigger))
    resumed = step_operator(task_id="ingest", step="ingest", config=config, partition="missing")
    with pytest.raises(AirflowFailException, match=f"exited with code {EXIT_BAD_INPUT}"):
        resumed.trigger_reentry(ctx, event)


def test_failure_reason_of_a_vanished_pod() -> None:
    assert pod_failure_reason(None)[0].startswith("the pod is gone")


def test_a_hostile_partition_fails_before_any_pod_is_created(tmp_path: Path, kube) -> None:
    """Like the local operator, the pod operator checks the run request before launching."""
    config = pipeline(tmp_path, kube)
    kube.behaviour = "run"

    class _Dag:
        params = {"partition": None}

    ctx = context("manual__hostile")
    ctx["dag"] = _Dag()
    ctx["params"] = {"partition": "../../etc"}
    op = step_operator(task_id="ingest", step="ingest", config=config, partition="../../etc")
    with pytest.raises(AirflowFailException, match="is not a partition name"):
        op.execute(ctx)
    assert kube.created("pods") == []


def test_pod_steps_have_the_same_buttons_as_local_steps(tmp_path: Path, kube) -> None:
    config = pipeline(tmp_path, kube)
    names = {
        step: [
            link.name for link in step_operator(task_id=step, step=step, config=config).operator_extra_links
        ]
        for step in ("ingest", "validate", "train", "evaluate")
    }
    assert names == {
        "ingest": ["Run page"],
        "validate": ["Data Docs", "Run page"],
        "train": ["Training curves", "Run page"],
        "evaluate": ["Evaluation report", "Run page"],
    }
