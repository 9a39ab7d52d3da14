"""Kubernetes Deployments: the canary Deployment (``k8s/serving``) runs the candidate version.

``<name>-canary`` sits at 0 replicas outside a rollout. ``deploy_canary`` sets its server's
``--version=`` argument to the candidate and scales it to one replica; ``remove_canary`` scales it
back to 0 (its pods are deleted; the Deployment stays as the template for the next rollout).
Promotion sends all traffic to the canary, rolls the stable Deployment to the candidate version
(a rolling update with ``maxUnavailable: 0``), waits for it, sends traffic back to stable and
removes the canary. Patches go through the kubernetes client (strategic merge patch).
"""

from __future__ import annotations

import time
from typing import Any

from slipway.rollout.routers import TrafficRouter
from slipway.rollout.targets import DeploymentTarget


class KubernetesTargetError(RuntimeError):
    pass


def with_version(container: dict[str, Any], version: int) -> list[str]:
    """The container's args with ``--version=`` set to ``version`` (added when missing)."""
    args = [a for a in container.get("args") or [] if not a.startswith("--version=")]
    return [*args, f"--version={version}"]


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
            from kubernetes import client, config

            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            self._api = client.AppsV1Api()
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
        self._set("canary", version=version, replicas=1)
        self._wait("canary")
        return {"deployment": self.names["canary"], "namespace": self.namespace, "version": version}

    def canary_ready(self, info: dict[str, Any]) -> bool:
        d = self._read("canary")
        return (d.spec.replicas or 0) > 0 and (d.status.ready_replicas or 0) >= 1

    def promote(self, version: int, info: dict[str, Any], router: TrafficRouter) -> None:
        router.set_canary_weight(100)
        self._set("stable", version=version)
        self._wait("stable")
        router.set_canary_weight(0)
        self.remove_canary(info)

    def remove_canary(self, info: dict[str, Any]) -> None:
        self._set("canary", replicas=0)
