"""``launcher.kind: kubernetes_job``: the Indexed Job and headless Service sent to the API server.

Through the provider's KubernetesJobOperator and the real client against the HTTP stand-in: the
operator creates the headless Service and the Job, finds its pods and defers to the provider's
``KubernetesJobTrigger``. (Two workers training together is proven with local processes in
``tests/integration/test_multi_worker.py``.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from operators.launchers import step_operator
from operators.launchers.kubernetes_job import SlipwayJobOperator
from operators.launchers.kubernetes_pod import SlipwayPodOperator
from tests.k8s.kube_standin import KubeStandIn
from tests.k8s.test_kubernetes_pod import context, pipeline

try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # pragma: no cover
    from airflow.exceptions import TaskDeferred


@pytest.fixture
def kube(tmp_path: Path):
    stand_in = KubeStandIn(scratch=tmp_path / "pods", behaviour="oom").start()
    yield stand_in
    stand_in.stop()


def test_indexed_job_with_headless_service_and_tf_config_inputs(tmp_path: Path, kube) -> None:
    config = pipeline(tmp_path, kube, kind="kubernetes_job", workers=3, port=2345, gpus=1)
    op = step_operator(task_id="train", step="train", config=config)
    assert isinstance(op, SlipwayJobOperator) and op.deferrable
    assert isinstance(step_operator(task_id="evaluate", step="evaluate", config=config), SlipwayPodOperator)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context())
    assert type(deferred.value.trigger).__name__ == "KubernetesJobTrigger"

    (service,) = kube.created("services")
    (job,) = kube.created("jobs")
    name = job["metadata"]["name"]
    assert service["metadata"]["name"] == name
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["selector"] == {"job-name": name}
    assert service["spec"]["ports"][0]["port"] == 2345

    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == 3 and spec["parallelism"] == 3
    pod = spec["template"]["spec"]
    assert pod["subdomain"] == name
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SLIPWAY_JOB_NAME"] == name and env["SLIPWAY_JOB_SERVICE"] == name
    assert env["SLIPWAY_WORKERS"] == "3" and env["SLIPWAY_WORKER_PORT"] == "2345"
    assert container["args"][0] == "train" and container["args"][1] == "--config-json"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["ports"] == [{"name": "tf-distribute", "containerPort": 2345}]
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert len(kube.pods) == 3  # the stand-in's "Job controller" made one pod per index


def test_jax_backend_with_a_multi_worker_job_is_refused_at_parse_time(tmp_path: Path, kube) -> None:
    from slipway.config import ConfigError

    with pytest.raises(ConfigError, match="kubernetes_job"):
        config = pipeline(tmp_path, kube, kind="kubernetes_job")
        config.with_overrides({"training": {"backend": "jax"}})
