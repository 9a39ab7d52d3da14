"""Kubernetes Deployments: a canary Deployment made for the rollout, a stable one replaced on promotion.

There is no canary Deployment outside a rollout. ``deploy_canary`` creates ``<name>-canary`` from
the stable Deployment (``k8s/serving/deployment-stable.yaml``): the same pod template, one
replica, the ``slipway.io/variant`` label set to ``canary`` (so the canary Service in
``k8s/serving`` selects its pods and stable's selector does not), and the server's ``--version=``
and ``--variant=`` arguments set to the candidate. ``remove_canary`` deletes it after a rollback
or a promotion; a Deployment already gone (a resumed rollout deleting twice) is fine. Promotion
sends all traffic to the canary while it answers, rolls the stable Deployment to the candidate
version (a rolling update with ``maxUnavailable: 0``), waits for it, sends the traffic back to
stable and deletes the canary. Calls go through the kubernetes client (strategic merge patch).
"""

from __future__ import annotations

import copy
import time
from typing import Any

from slipway.rollout.kube import kube_api
from slipway.rollout.routers import TrafficRouter
from slipway.rollout.targets import DeploymentTarget

VARIANT_LABEL = "slipway.io/variant"


class KubernetesTargetError(RuntimeError):
    pass


def with_version(container: dict[str, Any], version: int) -> list[str]:
    """The container's args with ``--version=`` set to ``version`` (added when missing)."""
    args = [a for a in container.get("args") or [] if not a.startswith("--version=")]
    return [*args, f"--version={version}"]


def canary_manifest(stable: dict[str, Any], name: str, version: int, container: str) -> dict[str, Any]:
    """The canary Deployment for ``version``, built from the stable Deployment (as the API shows it)."""
    selector = (stable.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
    if VARIANT_LABEL not in selector:
        raise KubernetesTargetError(
            f"Deployment {stable['metadata'].get('name')} selects its pods without the {VARIANT_LABEL}"
            " label: a canary made from it would share its pods"
        )
    spec = copy.deepcopy(stable["spec"])
    spec["replicas"] = 1
    spec["selector"]["matchLabels"][VARIANT_LABEL] = "canary"
    template = spec["template"]
    template.setdefault("metadata", {}).setdefault("labels", {})[VARIANT_LABEL] = "canary"
    found = False
    for c in template["spec"]["containers"]:
        if c["name"] == container:
            args = [a for a in with_version(c, version) if not a.startswith("--variant=")]
            c["args"] = [*args, "--variant=canary"]
            found = True
    if not found:
        raise KubernetesTargetError(
            f"Deployment {stable['metadata'].get('name')} has no container {container!r}"
        )
    labels = {**(stable["metadata"].get("labels") or {}), VARIANT_LABEL: "canary"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels, "annotations": {"slipway.io/candidate": str(version)}},
        "spec": spec,
    }


class KubernetesTarget(DeploymentTarget):
    def __init__(
        self,
        namespace: str,
        name: str,
        *,
        api: Any = None,
        ready_timeout_s: float = 600.0,
        poll_s: float = 2.0,
        container: str = "server",
    ) -> None:
        self.namespace = namespace
        self.names = {"stable": f"{name}-stable", "canary": f"{name}-canary"}
        self._api = api
        self.ready_timeout_s = ready_timeout_s
        self.poll_s = poll_s
        self.container = container

    @property
    def api(self) -> Any:
        if self._api is None:
            self._api = kube_api("AppsV1Api")
        return self._api

    def _read(self, variant: str) -> Any:
        return self.api.read_namespaced_deployment(self.names[variant], self.namespace)

    def _container(self, deployment: Any) -> dict[str, Any]:
        for container in deployment.spec.template.spec.containers:
            if container.name == self.container:
                return {"name": container.name, "args": list(container.args or [])}
        raise KubernetesTargetError(
            f"Deployment {self.namespace}/{deployment.metadata.name} has no container {self.container!r}"
        )

    def _set(self, variant: str, *, version: int | None = None, replicas: int | None = None) -> Any:
        deployment = self._read(variant)
        spec: dict[str, Any] = {}
        if replicas is not None:
            spec["replicas"] = replicas
        if version is not None:
            container = self._container(deployment)
            spec["template"] = {
                "spec": {
                    "containers": [{"name": container["name"], "args": with_version(container, version)}]
                }
            }
        return self.api.patch_namespaced_deployment(self.names[variant], self.namespace, {"spec": spec})

    def _rolled_out(self, variant: str) -> bool:
        d = self._read(variant)
        want = d.spec.replicas or 0
        status = d.status
        return (
            (status.observed_generation or 0) >= (d.metadata.generation or 0)
            and (status.updated_replicas or 0) >= want
            and (status.ready_replicas or 0) >= want
            and (status.available_replicas or 0) >= want
        )

    def _wait(self, variant: str) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while not self._rolled_out(variant):
            if time.monotonic() > deadline:
                raise KubernetesTargetError(
                    f"Deployment {self.namespace}/{self.names[variant]} not ready after {self.ready_timeout_s:g} s"
                )
            time.sleep(self.poll_s)

    def deploy_canary(self, version: int) -> dict[str, Any]:
        """Create the canary from stable; one already there (a resumed rollout) is set to ``version``."""
        from kubernetes.client.exceptions import ApiException

        stable = self.api.api_client.sanitize_for_serialization(self._read("stable"))
        body = canary_manifest(stable, self.names["canary"], version, self.container)
        try:
            self.api.create_namespaced_deployment(self.namespace, body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            self._set("canary", version=version, replicas=1)
        self._wait("canary")
        return {"deployment": self.names["canary"], "namespace": self.namespace, "version": version}

    def canary_ready(self, info: dict[str, Any]) -> bool:
        from kubernetes.client.exceptions import ApiException

        try:
            d = self._read("canary")
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return (d.spec.replicas or 0) > 0 and (d.status.ready_replicas or 0) >= 1

    def promote(self, version: int, info: dict[str, Any], router: TrafficRouter) -> None:
        # A resumed promotion may find the canary already deleted: then stable keeps the traffic.
        if self.canary_ready(info):
            router.set_canary_weight(100)
        self._set("stable", version=version)
        self._wait("stable")
        router.set_canary_weight(0)
        self.remove_canary(info)

    def remove_canary(self, info: dict[str, Any]) -> None:
        """Delete the canary Deployment and its pods; already deleted is fine."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            self.api.delete_namespaced_deployment(
                info.get("deployment") or self.names["canary"],
                info.get("namespace") or self.namespace,
                body=client.V1DeleteOptions(propagation_policy="Background"),
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
