"""k8s/gateway: builds with kustomize, RBAC passes strict validation, and the HTTPRoute's
backendRefs are exactly the Services of k8s/serving that the Gateway API router patches."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from slipway.config import RolloutConfig
from slipway.rollout.routers.gateway import GatewayRouter

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _built(folder: str) -> dict[tuple[str, str], dict[str, Any]]:
    out = subprocess.run(
        [str(BIN / "kubectl"), "kustomize", str(REPO / folder)], capture_output=True, text=True, check=True
    ).stdout
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out) if d}


def test_rbac_passes_strict_validation() -> None:
    result = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "--quiet", str(REPO / "k8s/gateway/rbac.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_route_points_at_the_serving_services_the_router_patches() -> None:
    gateway = _built("k8s/gateway")
    serving = _built("k8s/serving")
    config = RolloutConfig()
    route = gateway[("HTTPRoute", config.route_name)]
    assert route["metadata"]["namespace"] == config.namespace
    router = GatewayRouter(config.namespace, config.route_name)
    refs = {ref["name"]: ref for rule in route["spec"]["rules"] for ref in rule["backendRefs"]}
    assert set(refs) == set(router.services.values())
    for name, ref in refs.items():
        service = serving[("Service", name)]
        assert ref["port"] in [p["port"] for p in service["spec"]["ports"]]
    assert refs[router.services["stable"]]["weight"] == 100 and refs[router.services["canary"]]["weight"] == 0
    assert route["spec"]["parentRefs"][0]["name"] in {n for kind, n in gateway if kind == "Gateway"}
    role = gateway[("Role", "slipway-rollout")]
    names = {n for rule in role["rules"] for n in rule.get("resourceNames", [])}
    assert {
        config.route_name,
        f"{config.deployment_name}-stable",
        f"{config.deployment_name}-canary",
    } <= names
