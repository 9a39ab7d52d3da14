"""The Gateway API router and the Kubernetes Deployment target through the real kubernetes client,
against an HTTP stand-in for the API server holding the repository's own manifests
(``k8s/gateway/httproute.yaml``, ``k8s/serving/deployment-*.yaml``)."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from slipway.rollout.routers.gateway import GatewayRouter, GatewayRouterError
from slipway.rollout.targets.kubernetes import KubernetesTarget

REPO = Path(__file__).resolve().parents[2]
NS = "slipway"


class StandIn:
    """Objects by API path; resourceVersion checks on PUT; Deployments become ready on the
    second read after a change (so waiting is exercised)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, Any]] = []
        self.conflicts_to_inject = 0
        self.lock = threading.Lock()
        route = yaml.safe_load((REPO / "k8s/gateway/httproute.yaml").read_text())
        self.add(f"/apis/gateway.networking.k8s.io/v1/namespaces/{NS}/httproutes/slipway-serving", route)
        for variant in ("stable", "canary"):
            d = yaml.safe_load((REPO / f"k8s/serving/deployment-{variant}.yaml").read_text())
            d["status"] = {}
            self.add(f"/apis/apps/v1/namespaces/{NS}/deployments/slipway-serving-{variant}", d)

    def add(self, path: str, obj: dict[str, Any]) -> None:
        obj["metadata"].update(namespace=NS, resourceVersion="1", generation=1)
        self.objects[path] = obj
        self._settle(obj, now=True)

    @staticmethod
    def _settle(obj: dict[str, Any], now: bool = False) -> None:
        if obj.get("kind") != "Deployment":
            return
        if now or obj.get("_pending"):
            replicas = obj["spec"].get("replicas", 1)
            obj["status"] = {
                "observedGeneration": obj["metadata"]["generation"],
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
            }
            obj.pop("_pending", None)
        else:
            obj["_pending"] = True

    def bump(self, obj: dict[str, Any]) -> None:
        obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
        obj["metadata"]["generation"] += 1
        self._settle(obj)


def _merge_deployment(obj: dict[str, Any], patch: dict[str, Any]) -> None:
    spec = patch.get("spec", {})
    if "replicas" in spec:
        obj["spec"]["replicas"] = spec["replicas"]
    for change in spec.get("template", {}).get("spec", {}).get("containers", []):
        for container in obj["spec"]["template"]["spec"]["containers"]:
            if container["name"] == change["name"]:
                container.update({k: v for k, v in change.items() if k != "name"})


@pytest.fixture
def api() -> Iterator[tuple[StandIn, Any]]:
    from kubernetes import client

    state = StandIn()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            return json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"null")

        def do_GET(self) -> None:
            with state.lock:
                state.requests.append(("GET", self.path, None))
                obj = state.objects.get(self.path)
                if obj is None:
                    self._send(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
                    return
                shown = {k: v for k, v in obj.items() if not k.startswith("_")}
                self._send(200, copy.deepcopy(shown))
                state._settle(obj)

        def do_PUT(self) -> None:
            body = self._body()
            with state.lock:
                state.requests.append(("PUT", self.path, body))
                obj = state.objects[self.path]
                if (
                    state.conflicts_to_inject
                    or body["metadata"]["resourceVersion"] != obj["metadata"]["resourceVersion"]
                ):
                    state.conflicts_to_inject = max(0, state.conflicts_to_inject - 1)
                    state.bump(obj)  # someone else's edit
                    self._send(409, {"kind": "Status", "code": 409, "reason": "Conflict"})
                    return
                body["metadata"]["generation"] = obj["metadata"]["generation"]
                state.objects[self.path] = body
                state.bump(body)
                self._send(200, body)

        def do_PATCH(self) -> None:
            body = self._body()
            with state.lock:
                state.requests.append(("PATCH", self.path, (self.headers["content-type"], body)))
                obj = state.objects[self.path]
                _merge_deployment(obj, body)
                state.bump(obj)
                self._send(200, {k: v for k, v in obj.items() if not k.startswith("_")})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    config = client.Configuration(host=f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield state, client.ApiClient(config)
    finally:
        server.shutdown()


def _route_weights(state: StandIn) -> list[tuple[str, int]]:
    route = state.objects[f"/apis/gateway.networking.k8s.io/v1/namespaces/{NS}/httproutes/slipway-serving"]
    return [(r["name"], r["weight"]) for r in route["spec"]["rules"][0]["backendRefs"]]


def test_gateway_router_sets_weights_and_retries_conflicts(api: tuple[StandIn, Any]) -> None:
    from kubernetes import client

    state, api_client = api
    router = GatewayRouter(NS, "slipway-serving", api=client.CustomObjectsApi(api_client))
    assert router.weights() == {"stable": 100, "canary": 0}
    state.conflicts_to_inject = 1
    assert router.set_canary_weight(10) == {"stable": 90, "canary": 10}
    assert _route_weights(state) == [("slipway-serving-stable", 90), ("slipway-serving-canary", 10)]
    puts = [r for r in state.requests if r[0] == "PUT"]
    assert len(puts) == 2  # the first met a concurrent edit (409) and was read again
    with pytest.raises(ValueError, match="percent"):
        router.set_canary_weight(101)
    wrong = GatewayRouter(
        NS, "slipway-serving", canary_service="nope", api=client.CustomObjectsApi(api_client)
    )
    with pytest.raises(GatewayRouterError, match="nope"):
        wrong.weights()


def test_kubernetes_target_canary_promotion_and_removal(api: tuple[StandIn, Any]) -> None:
    from kubernetes import client

    state, api_client = api
    router = GatewayRouter(NS, "slipway-serving", api=client.CustomObjectsApi(api_client))
    target = KubernetesTarget(NS, "slipway-serving", api=client.AppsV1Api(api_client), poll_s=0.01)
    deployments = f"/apis/apps/v1/namespaces/{NS}/deployments/slipway-serving-"

    info = target.deploy_canary(7)
    canary = state.objects[deployments + "canary"]
    assert canary["spec"]["replicas"] == 1
    args = canary["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--version=7" in args and "--version=candidate" not in args and "--variant=canary" in args
    assert target.canary_ready(info)

    router.set_canary_weight(25)
    target.promote(7, info, router)
    stable = state.objects[deployments + "stable"]
    assert "--version=7" in stable["spec"]["template"]["spec"]["containers"][0]["args"]
    assert state.objects[deployments + "canary"]["spec"]["replicas"] == 0
    assert _route_weights(state) == [("slipway-serving-stable", 100), ("slipway-serving-canary", 0)]
    assert not target.canary_ready(info)
    # traffic went all to the canary while stable rolled, then back: in that order
    weights = [b["spec"]["rules"][0]["backendRefs"][1]["weight"] for m, _, b in state.requests if m == "PUT"]
    assert weights == [25, 100, 0]
    patches = [b for m, _, b in state.requests if m == "PATCH"]
    assert all(content_type == "application/strategic-merge-patch+json" for content_type, _ in patches)
