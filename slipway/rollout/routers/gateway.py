"""Kubernetes Gateway API: the weights of an ``HTTPRoute``'s two backendRefs, through the client.

The route (``k8s/gateway/httproute.yaml``) has one rule whose backendRefs name the stable and the
canary Services (``<route>-stable``, ``<route>-canary`` by default). The update is a read, a
change of the two weights and a replace carrying the ``resourceVersion`` read, so a concurrent
edit makes it retry instead of being overwritten.
"""

from __future__ import annotations

import copy
from typing import Any

from slipway.rollout.kube import kube_api
from slipway.rollout.routers import TrafficRouter, split

GROUP, VERSION, PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"


class GatewayRouterError(RuntimeError):
    pass


class GatewayRouter(TrafficRouter):
    def __init__(
        self,
        namespace: str,
        route: str,
        *,
        stable_service: str | None = None,
        canary_service: str | None = None,
        api: Any = None,
    ) -> None:
        self.namespace = namespace
        self.route = route
        self.services = {
            "stable": stable_service or f"{route}-stable",
            "canary": canary_service or f"{route}-canary",
        }
        self._api = api

    @property
    def api(self) -> Any:
        if self._api is None:
            self._api = kube_api("CustomObjectsApi")
        return self._api

    def _get(self) -> dict[str, Any]:
        return self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, self.route)

    def _refs(self, route: dict[str, Any]) -> dict[str, dict[str, Any]]:
        found = {}
        for rule in route.get("spec", {}).get("rules", []):
            for ref in rule.get("backendRefs", []):
                for variant, service in self.services.items():
                    if ref.get("name") == service:
                        found[variant] = ref
        missing = sorted(set(self.services) - set(found))
        if missing:
            raise GatewayRouterError(
                f"HTTPRoute {self.namespace}/{self.route} has no backendRef for"
                f" {[self.services[m] for m in missing]}"
            )
        return found

    def weights(self) -> dict[str, int]:
        refs = self._refs(self._get())
        return {variant: int(ref.get("weight", 1)) for variant, ref in refs.items()}

    def set_canary_weight(self, percent: int, attempts: int = 5) -> dict[str, int]:
        from kubernetes.client.exceptions import ApiException

        wanted = split(percent)
        for _ in range(attempts):
            route = copy.deepcopy(self._get())
            for variant, ref in self._refs(route).items():
                ref["weight"] = wanted[variant]
            try:
                self.api.replace_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, self.route, route
                )
                return wanted
            except ApiException as exc:
                if exc.status != 409:  # 409: someone else changed the route; read it again
                    raise
        raise GatewayRouterError(f"HTTPRoute {self.namespace}/{self.route} kept changing; weights not set")
