"""k8s/: every overlay builds with ``kubectl kustomize`` and passes ``kubernetes-validate --strict``;
the launcher's RBAC grants exactly what the launchers call (recorded by the API stand-in)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from operators.launchers import step_operator
from tests.k8s.kube_standin import KubeStandIn
from tests.k8s.test_kubernetes_pod import _first_event, context, pipeline

try:
    from airflow.sdk.exceptions import AirflowException, TaskDeferred
except ImportError:  # pragma: no cover
    from airflow.exceptions import AirflowException, TaskDeferred

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
OVERLAYS = ["local", "gpu"]

# Granted but not exercised against the stand-in, each for a stated reason.
GRANTED_FOR = {
    ("batch", "jobs", "get"): "KubernetesJobTrigger polls the Job's status from the triggerer",
    ("batch", "jobs", "delete"): "on_kill deletes a running Job when the task is stopped",
    ("", "services", "delete"): "the Job's headless Service is deleted when the Job is done",
}


def build(overlay: str) -> list[dict]:
    out = subprocess.run(
        [str(BIN / "kubectl"), "kustomize", str(REPO / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_builds_and_validates_strictly(overlay: str, tmp_path: Path) -> None:
    docs = build(overlay)
    rendered = tmp_path / f"{overlay}.yaml"
    rendered.write_text(yaml.safe_dump_all(docs))
    done = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", str(rendered)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "ServiceAccount", "Role", "RoleBinding", "ResourceQuota", "Job", "Service"} <= kinds
    (ns,) = [d for d in docs if d["kind"] == "Namespace"]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    (job,) = [d for d in docs if d["kind"] == "Job"]
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    limits = container["resources"]["limits"]
    assert ("nvidia.com/gpu" in limits) == (overlay == "gpu")


def _granted() -> set[tuple[str, str, str]]:
    (role,) = [d for d in build("local") if d["kind"] == "Role"]
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def _called(kube: KubeStandIn) -> set[tuple[str, str, str]]:
    calls = set()
    for r in kube.requests:
        m = re.fullmatch(r"/api/v1/namespaces/[^/]+/(\w+)(/[^/]+)?(/\w+)?", r.path) or re.fullmatch(
            r"/apis/(batch)/v1/namespaces/[^/]+/(\w+)(/[^/]+)?(/\w+)?", r.path
        )
        assert m, f"unexpected API call {r.method} {r.path}"
        if r.path.startswith("/apis/"):
            group, resource, name, sub = m.groups()
        else:
            group, (resource, name, sub) = "", m.groups()
        if sub:
            resource += sub
        verb = {"POST": "create", "PATCH": "patch", "DELETE": "delete"}.get(r.method)
        if verb is None:
            verb = "watch" if r.query.get("watch") == ["true"] else "get" if name else "list"
        calls.add((group, resource, verb))
    return calls


def test_rbac_grants_exactly_what_the_launchers_call(tmp_path: Path) -> None:
    kube = KubeStandIn(scratch=tmp_path / "pods").start()
    try:
        for behaviour in ("oom", "evicted"):  # a pod's whole life: create, watch, logs, cleanup
            kube.behaviour = behaviour
            config = pipeline(tmp_path, kube)
            op = step_operator(task_id="train", step="train", config=config)
            with pytest.raises(TaskDeferred) as deferred:
                op.execute(context())
            event = asyncio.run(_first_event(deferred.value.trigger))
            with pytest.raises(AirflowException):
                step_operator(task_id="train", step="train", config=config).trigger_reentry(context(), event)
        job_config = pipeline(tmp_path, kube, kind="kubernetes_job", workers=2)
        with pytest.raises(TaskDeferred):
            step_operator(task_id="train", step="train", config=job_config).execute(context())
    finally:
        kube.stop()
    called, granted = _called(kube), _granted()
    assert called <= granted, f"called but not granted: {sorted(called - granted)}"
    unused = granted - called
    assert unused <= set(GRANTED_FOR), f"granted but never called: {sorted(unused - set(GRANTED_FOR))}"
    print("RBAC grants:", sorted(granted))


def test_step_pods_get_no_api_access() -> None:
    docs = build("local")
    (step_sa,) = [
        d for d in docs if d["kind"] == "ServiceAccount" and d["metadata"]["name"] == "slipway-step"
    ]
    assert step_sa["automountServiceAccountToken"] is False
    subjects = [s["name"] for d in docs if d["kind"] == "RoleBinding" for s in d["subjects"]]
    assert subjects == ["slipway-launcher"]
