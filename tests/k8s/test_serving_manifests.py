"""k8s/serving: strict schema validation, kustomize build, and the properties the issue asks for
(probes on the server's endpoints, resources, PDB, Services, Pod Security "restricted"). The canary
Deployment is the one a rollout creates from the stable one (``canary_manifest``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from slipway.rollout.targets.kubernetes import canary_manifest

REPO = Path(__file__).resolve().parents[2]
FOLDER = REPO / "k8s" / "serving"
BIN = Path(sys.executable).parent
MANIFESTS = sorted(p for p in FOLDER.glob("*.yaml") if p.name != "kustomization.yaml")


def _built() -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(BIN / "kubectl"), "kustomize", str(FOLDER)], capture_output=True, text=True, check=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def _with_canary(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The build plus the canary Deployment a rollout of version 7 creates from stable."""
    (stable,) = [d for d in docs if d["kind"] == "Deployment"]
    canary = canary_manifest(stable, "slipway-serving-canary", 7, "server")
    canary["metadata"]["namespace"] = stable["metadata"]["namespace"]
    return [*docs, canary]


def test_every_manifest_and_the_build_pass_strict_validation(tmp_path: Path) -> None:
    built = tmp_path / "built.yaml"
    built.write_text(yaml.safe_dump_all(_with_canary(_built())))
    result = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "--quiet", *map(str, MANIFESTS), str(built)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_kustomization_lists_every_manifest() -> None:
    listed = yaml.safe_load((FOLDER / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == [p.name for p in MANIFESTS]


@pytest.mark.parametrize("variant", ["stable", "canary"])
def test_deployment_per_variant_is_probed_limited_and_restricted(variant: str) -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _with_canary(_built())}
    deployment = docs[("Deployment", f"slipway-serving-{variant}")]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert f"--variant={variant}" in container["args"] and container["args"][0] == "serve"
    assert (
        set(container["resources"]["requests"]) == set(container["resources"]["limits"]) == {"cpu", "memory"}
    )
    # Pod Security Standard "restricted"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["readOnlyRootFilesystem"] is True
    assert pod["automountServiceAccountToken"] is False
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = docs[("Service", f"slipway-serving-{variant}")]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["metadata"]["namespace"] == "slipway"


def test_stable_has_a_disruption_budget() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _built()}
    pdb = docs[("PodDisruptionBudget", "slipway-serving-stable")]
    stable = docs[("Deployment", "slipway-serving-stable")]
    assert pdb["spec"]["minAvailable"] == 1 < stable["spec"]["replicas"]
    assert (
        pdb["spec"]["selector"]["matchLabels"].items()
        <= stable["spec"]["template"]["metadata"]["labels"].items()
    )


def test_serving_image_runs_as_the_pods_user() -> None:
    dockerfile = (REPO / "docker" / "serving.Dockerfile").read_text()
    assert "USER 10001" in dockerfile
    pod = {(d["kind"], d["metadata"]["name"]): d for d in _built()}[("Deployment", "slipway-serving-stable")]
    assert pod["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001
