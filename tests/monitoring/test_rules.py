"""Alert rules: promtool accepts them, every alert has firing and not-firing cases, names exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from slipway import metrics
from tests.monitoring.conftest import REPO

RULES = REPO / "monitoring" / "rules" / "slipway.yml"
RULE_TESTS = sorted((REPO / "monitoring" / "rules" / "tests").glob("*_test.yml"))
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def promtool(*args: str) -> str:
    if not shutil.which(PROMTOOL):
        pytest.fail("promtool is not installed (make install installs the prometheus package)")
    done = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def alerts() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_check_rules() -> None:
    assert "SUCCESS" in promtool("check", "rules", str(RULES))


def test_promtool_unit_tests_pass() -> None:
    assert "FAILED" not in promtool("test", "rules", *map(str, RULE_TESTS))


def test_every_alert_has_firing_and_quiet_cases() -> None:
    cases: dict[str, set[bool]] = {}
    groups = [g for path in RULE_TESTS for g in yaml.safe_load(path.read_text())["tests"]]
    for group in groups:
        for case in group.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], set()).add(bool(case.get("exp_alerts")))
    for alert in alerts():
        assert cases.get(alert) == {True, False}, f"{alert} needs a firing and a not-firing case"
    assert len(alerts()) >= 14


def test_prometheus_rule_carries_the_same_groups() -> None:
    from monitoring.generate import PROMETHEUS_RULE, prometheus_rule

    assert PROMETHEUS_RULE.read_text() == prometheus_rule(), "run python -m monitoring.generate"
    manifest = yaml.safe_load(PROMETHEUS_RULE.read_text())
    assert manifest["kind"] == "PrometheusRule"
    assert manifest["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def defined_names() -> set[str]:
    names = set(metrics.METRICS)
    # a histogram is queried through its series
    return names | {f"{n}_{suffix}" for n in names for suffix in ("bucket", "sum", "count")}


def used_names() -> set[str]:
    text = RULES.read_text()
    for path in (REPO / "monitoring" / "grafana").glob("*.json"):
        board = json.loads(path.read_text())
        text += " ".join(t["expr"] for p in board["panels"] for t in p.get("targets", []))
        text += " ".join(
            v.get("query", "") for v in board["templating"]["list"] if isinstance(v.get("query"), str)
        )
    return set(re.findall(r"\bslipway_[a-z0-9_]+", text))


def test_every_slipway_name_in_rules_and_dashboards_is_defined() -> None:
    undefined = used_names() - defined_names()
    assert not undefined, f"not defined in slipway/metrics.py: {sorted(undefined)}"
