"""The Gateway API router and the Kubernetes Deployment target through the real kubernetes client,
against an HTTP stand-in for the API server holding the repository's own manifests
(``k8s/gateway/httproute.yaml``, ``k8s/serving/deployment-stable.yaml``); the rollout's Role
(``k8s/gateway/rbac.yaml``) grants exactly the calls the stand-in records."""

from __future__ import annotations

import copy
import json
import re
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
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"


class StandIn:
    """Objects by API path; resourceVersion checks on PUT; 409 on creating what exists, 404 on
    deleting what does not; Deployments become ready on the second read after a change (so
    waiting is exercised). ``requests`` holds (method, path, body), ``answered`` (method, path,
    status code)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, Any]] = []
        self.answered: list[tuple[str, str, int]] = []
        self.conflicts_to_inject = 0
        self.lock = threading.Lock()
        route = yaml.safe_load((REPO / "k8s/gateway/httproute.yaml").read_text())
        self.add(f"/apis/gateway.networking.k8s.io/v1/namespaces/{NS}/httproutes/slipway-serving", route)
        d = yaml.safe_load((REPO / "k8s/serving/deployment-stable.yaml").read_text())
        d["status"] = {}
        self.add(f"{DEPLOYMENTS}/slipway-serving-stable", d)

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
            state.answered.append((self.command, self.path, code))
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

        def do_POST(self) -> None:
            body = self._body()
            with state.lock:
                state.requests.append(("POST", self.path, body))
                path = f"{self.path}/{body['metadata']['name']}"
                if path in state.objects:
                    self._send(409, {"kind": "Status", "code": 409, "reason": "AlreadyExists"})
                    return
                body["status"] = {}
                body["metadata"].update(namespace=NS, resourceVersion="1", generation=1)
                state.objects[path] = body
                state._settle(body)  # ready on the second read
                self._send(201, {k: v for k, v in body.items() if not k.startswith("_")})

        def do_DELETE(self) -> None:
            body = self._body()
            with state.lock:
                state.requests.append(("DELETE", self.path, body))
                if state.objects.pop(self.path, None) is None:
                    self._send(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
                    return
                self._send(200, {"kind": "Status", "code": 200, "status": "Success"})

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


def _target(api_client: Any) -> tuple[GatewayRouter, KubernetesTarget]:
    from kubernetes import client

    router = GatewayRouter(NS, "slipway-serving", api=client.CustomObjectsApi(api_client))
    target = KubernetesTarget(NS, "slipway-serving", api=client.AppsV1Api(api_client), poll_s=0.01)
    return router, target


def _args(deployment: dict[str, Any]) -> list[str]:
    return deployment["spec"]["template"]["spec"]["containers"][0]["args"]


def test_kubernetes_target_creates_the_canary_promotes_and_deletes_it(api: tuple[StandIn, Any]) -> None:
    state, api_client = api
    router, target = _target(api_client)
    stable_before = copy.deepcopy(state.objects[f"{DEPLOYMENTS}/slipway-serving-stable"])
    assert f"{DEPLOYMENTS}/slipway-serving-canary" not in state.objects  # none outside a rollout
    assert not target.canary_ready({})

    info = target.deploy_canary(7)
    canary = state.objects[f"{DEPLOYMENTS}/slipway-serving-canary"]
    assert [(m, p) for m, p, _ in state.requests if m == "POST"] == [("POST", DEPLOYMENTS)]
    assert canary["spec"]["replicas"] == 1
    assert "--version=7" in _args(canary) and "--variant=canary" in _args(canary)
    assert not any(a in _args(canary) for a in ("--version=champion", "--variant=stable"))
    # the canary Service selects its pods, the stable Deployment and Service do not
    pod_labels = canary["spec"]["template"]["metadata"]["labels"]
    service = yaml.safe_load((REPO / "k8s/serving/service-canary.yaml").read_text())
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert not stable_before["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert canary["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    # the same pod template otherwise (probes, resources, security context)
    stable_pod, canary_pod = stable_before["spec"]["template"]["spec"], canary["spec"]["template"]["spec"]
    assert {k: v for k, v in canary_pod.items() if k != "containers"} == {
        k: v for k, v in stable_pod.items() if k != "containers"
    }
    assert canary_pod["containers"][0]["readinessProbe"] == stable_pod["containers"][0]["readinessProbe"]
    assert target.canary_ready(info)

    router.set_canary_weight(25)
    target.promote(7, info, router)
    stable = state.objects[f"{DEPLOYMENTS}/slipway-serving-stable"]
    assert "--version=7" in _args(stable) and "--variant=stable" in _args(stable)
    assert "--version=champion" not in _args(stable)
    assert f"{DEPLOYMENTS}/slipway-serving-canary" not in state.objects
    assert _route_weights(state) == [("slipway-serving-stable", 100), ("slipway-serving-canary", 0)]
    assert not target.canary_ready(info)
    # traffic went all to the canary while stable rolled, then back: in that order
    weights = [b["spec"]["rules"][0]["backendRefs"][1]["weight"] for m, _, b in state.requests if m == "PUT"]
    assert weights == [25, 100, 0]
    patches = [(p, b) for m, p, b in state.requests if m == "PATCH"]
    assert [p for p, _ in patches] == [f"{DEPLOYMENTS}/slipway-serving-stable"]
    assert all(content_type == "application/strategic-merge-patch+json" for _, (content_type, _) in patches)
    (delete,) = [b for m, _, b in state.requests if m == "DELETE"]
    assert delete["propagationPolicy"] == "Background"  # its ReplicaSet and pods go too

    target.remove_canary(info)  # a resumed rollout deletes again: the 404 is fine
    deletes = [(p, code) for m, p, code in state.answered if m == "DELETE"]
    assert deletes == [
        (f"{DEPLOYMENTS}/slipway-serving-canary", 200),
        (f"{DEPLOYMENTS}/slipway-serving-canary", 404),
    ]
    print("DELETE requests:", deletes)


def test_kubernetes_target_rollback_deletes_the_canary_and_leaves_stable(api: tuple[StandIn, Any]) -> None:
    state, api_client = api
    router, target = _target(api_client)
    stable_before = copy.deepcopy(state.objects[f"{DEPLOYMENTS}/slipway-serving-stable"])
    info = target.deploy_canary(8)
    again = target.deploy_canary(8)  # a resumed rollout deploys again: the 409 becomes a patch
    assert again == info
    assert [code for m, _, code in state.answered if m == "POST"] == [201, 409]
    assert "--version=8" in _args(state.objects[f"{DEPLOYMENTS}/slipway-serving-canary"])
    router.set_canary_weight(10)

    router.set_canary_weight(0)  # what the controller does on rollback
    target.remove_canary(info)
    assert f"{DEPLOYMENTS}/slipway-serving-canary" not in state.objects
    assert not target.canary_ready(info)
    stable = state.objects[f"{DEPLOYMENTS}/slipway-serving-stable"]
    assert stable["spec"] == stable_before["spec"]
    assert not [p for m, p, _ in state.requests if m == "PATCH" and p.endswith("-stable")]


def _rollout_calls(state: StandIn) -> set[tuple[str, str, str, str]]:
    """(API group, resource, verb, name) of every recorded call; a create has no name (``*``)."""
    calls = set()
    for method, path, _ in state.requests:
        m = re.fullmatch(r"/apis/([^/]+)/[^/]+/namespaces/[^/]+/(\w+)(?:/([^/?]+))?(?:\?.*)?", path)
        assert m, f"unexpected API call {method} {path}"
        group, resource, name = m.groups()
        verb = {"GET": "get", "PUT": "update", "PATCH": "patch", "POST": "create", "DELETE": "delete"}[method]
        calls.add((group, resource, verb, name or "*"))
    return calls


def test_rollout_role_grants_exactly_what_the_router_and_target_call(api: tuple[StandIn, Any]) -> None:
    state, api_client = api
    router, target = _target(api_client)
    info = target.deploy_canary(7)
    router.set_canary_weight(10)
    target.promote(7, info, router)
    info = target.deploy_canary(8)
    target.deploy_canary(8)
    router.set_canary_weight(0)
    target.remove_canary(info)
    called = _rollout_calls(state)
    docs = yaml.safe_load_all((REPO / "k8s/gateway/rbac.yaml").read_text())
    (role,) = [d for d in docs if d["kind"] == "Role"]
    granted = {
        (group, resource, verb, name)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        for name in rule.get("resourceNames") or ["*"]
    }
    assert called == granted, (
        f"called not granted: {called - granted}; granted not called: {granted - called}"
    )
