"""A train pod taken away mid-training fails its try retryably; the retry's new pod resumes.

The pods really run here: ``KubeletStandIn`` runs each created pod's container as a local
process, so the ``SlipwayPodOperator`` of the ``train`` step creates a pod, defers, and the
provider's trigger polls it while the step trains and checkpoints every epoch into the store.
Once a checkpoint exists, the stand-in takes the pod away the way Kubernetes does (preempted by
the scheduler: SIGKILL, ``DisruptionTarget``, ``Preempted`` event, pod deleted; or evicted by the
kubelet for memory pressure). The try fails with that reason and is retryable; the next try -
the operator executed again with ``try_number`` 2, as Airflow's retry does - creates a new pod
whose train step resumes from the last checkpoint and finishes the configured epochs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from slipway.config import PipelineConfig, load_config
from slipway.steps.context import RunContext
from slipway.store import ArtifactStore
from tests.k8s.kubelet import KubeletStandIn
from tests.k8s.test_kubernetes_pod import context, run_deferred

EPOCHS = 60  # an epoch here takes ~25 ms (JAX, CPU): the kill lands long before the end


@pytest.fixture
def kubelet(tmp_path: Path) -> Iterator[KubeletStandIn]:
    stand_in = KubeletStandIn(scratch=tmp_path / "pods")
    stand_in.start()
    yield stand_in
    stand_in.stop()


def training_pipeline(tmp_path: Path, kube: KubeletStandIn) -> PipelineConfig:
    path = tmp_path / "digits.yaml"
    raw = {
        "name": "digits",
        "model_name": "digits",
        "store_url": f"file://{tmp_path / 'store'}",
        "data": {"source": {"kind": "digits", "scale": 16}, "input_shape": [8, 8], "num_classes": 10},
        "training": {
            "layers": [{"type": "flatten"}, {"type": "dense", "units": 16, "activation": "relu"}],
            "epochs": EPOCHS,
            "batch_size": 32,
        },
        "metrics": {"textfile_dir": str(tmp_path / "metrics")},
        "launcher": {
            "kind": "kubernetes",
            "namespace": "slipway",
            "image": "registry.example/slipway-step-gpu:1.0",
            "config_file": str(kube.kubeconfig(tmp_path / "kubeconfig")),
            "priority_class": "slipway-training",
            "poll_interval_seconds": 0.2,
            "schedule_timeout_seconds": 30,
            "startup_timeout_seconds": 30,
        },
    }
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


class Disruptor(threading.Thread):
    """Waits for the running train step's checkpoint of epoch >= 1, then takes its pod away."""

    def __init__(self, kube: KubeletStandIn, store: ArtifactStore, state_key: str, how: str) -> None:
        super().__init__(daemon=True)
        self.kube, self.store, self.state_key, self.how = kube, store, state_key, how
        self.killed_at: int | None = None
        self.pod: str | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                if self.store.exists(self.state_key) and self.store.get_json(self.state_key)["epoch"] >= 1:
                    break
                time.sleep(0.05)
            else:
                raise TimeoutError("no checkpoint appeared")
            self.pod = getattr(self.kube, self.how)()  # preempt() / evict()
            self.killed_at = int(self.store.get_json(self.state_key)["epoch"])
        except BaseException as exc:  # reported by the test's thread
            self.error = exc


def retry_context(run_id: str, try_number: int) -> dict[str, Any]:
    ctx = context(run_id)
    ctx["ti"].try_number = try_number
    return ctx


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("preempt", r"preempted by the scheduler \(Preempted by pod slipway/high-priority-\w+ on node"),
        ("evict", "evicted by the node: The node was low on resource: memory"),
    ],
)
def test_a_disrupted_train_pod_fails_retryably_and_its_retry_resumes_from_the_checkpoint(
    tmp_path: Path, kubelet: KubeletStandIn, how: str, reason: str
) -> None:
    config = training_pipeline(tmp_path, kubelet)
    run_id = f"manual__{how}"
    run_deferred(config, "ingest", context(run_id))  # ingest runs in its own pod first
    run = RunContext.create(config, run_id)
    state_key = f"{run.layout.checkpoint}/state.json"

    disruptor = Disruptor(kubelet, run.store, state_key, how)
    disruptor.start()
    with pytest.raises(AirflowException, match=reason) as failed:
        run_deferred(config, "train", retry_context(run_id, 1))
    disruptor.join(timeout=60)
    assert disruptor.error is None, disruptor.error
    assert not isinstance(failed.value, AirflowFailException)  # Airflow retries the task
    assert disruptor.pod is not None and disruptor.killed_at is not None
    assert 1 <= disruptor.killed_at < EPOCHS, "killed too late"
    assert not run.store.exists(run.result_key("train"))
    (killed,) = [p for p in kubelet.created("pods") if p["metadata"]["name"] == disruptor.pod]
    assert killed["spec"]["priorityClassName"] == "slipway-training"
    first_log = kubelet.logs[("slipway", disruptor.pod)]
    assert "training digits" in first_log and "resuming from epoch" not in first_log
    if how == "preempt":
        assert ("slipway", disruptor.pod) not in kubelet.pods  # the scheduler deleted it
    print(f"\n{how}: try 1 failed at epoch {disruptor.killed_at}: {failed.value}")

    result = run_deferred(config, "train", retry_context(run_id, 2))  # Airflow's retry

    first, second = kubelet.created("pods")[-2:]
    assert (
        first["metadata"]["labels"]["try_number"] == "1" and second["metadata"]["labels"]["try_number"] == "2"
    )
    assert second["metadata"]["name"] != disruptor.pod
    assert (
        f"resuming from epoch {result['resumed_from_epoch']}"
        in kubelet.logs[("slipway", second["metadata"]["name"])]
    )
    logs_read = [r.path for r in kubelet.requests if r.method == "GET" and r.path.endswith("/log")]
    assert (
        f"/api/v1/namespaces/slipway/pods/{second['metadata']['name']}/log" in logs_read
    )  # into the task log
    stored = run.store.get_json(run.result_key("train"))
    assert stored == result
    assert stored["resumed_from_epoch"] >= disruptor.killed_at >= 1
    assert stored["epochs_completed"] == EPOCHS
    assert len(stored["history"]["loss"]) == EPOCHS  # the curves run through the disruption
    print(f"{how}: try 2 resumed from epoch {stored['resumed_from_epoch']}, completed {EPOCHS}")
    if how != "preempt":
        return  # the retry's path is the same: load the model once (importing Keras takes seconds)

    import keras  # the exported model loads and predicts (imported late: the rest needs no Keras)
    import numpy as np

    model = keras.saving.load_model(
        run.store.download_file(f"{stored['model_key']}/model.keras", tmp_path / "m.keras")
    )
    assert model.predict(np.zeros((2, 8, 8), dtype="float32"), verbose=0).shape == (2, 10)


def test_a_preempted_pod_that_is_still_there_names_the_condition() -> None:
    from kubernetes.client import models as k8s

    from operators.launchers.kubernetes_pod import pod_failure_reason

    pod = k8s.V1Pod(
        status=k8s.V1PodStatus(
            phase="Failed",
            conditions=[
                k8s.V1PodCondition(
                    type="DisruptionTarget",
                    status="True",
                    reason="PreemptionByScheduler",
                    message="default-scheduler: preempting to accommodate a higher priority pod",
                )
            ],
            container_statuses=[
                k8s.V1ContainerStatus(
                    name="base",
                    image="i",
                    image_id="",
                    ready=False,
                    restart_count=0,
                    state=k8s.V1ContainerState(
                        terminated=k8s.V1ContainerStateTerminated(exit_code=137, reason="Error")
                    ),
                )
            ],
        )
    )
    reason, exit_code = pod_failure_reason(pod)
    assert reason.startswith("preempted by the scheduler") and "higher priority pod" in reason
    assert exit_code is None  # not the step's failure: whatever the kill's exit code


def test_a_gone_pod_without_a_preemption_event_is_just_gone() -> None:
    from kubernetes.client import models as k8s

    from operators.launchers.kubernetes_pod import pod_failure_reason

    other = k8s.CoreV1Event(
        involved_object=k8s.V1ObjectReference(name="p"), metadata=k8s.V1ObjectMeta(), reason="Killing"
    )
    assert pod_failure_reason(None, [other])[0].startswith("the pod is gone")
