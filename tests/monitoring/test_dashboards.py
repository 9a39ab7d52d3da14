"""Every panel query of the shipped dashboards returns data from a real Prometheus.

Prometheus (Debian package) scrapes a real Pushgateway that two real runs of the digits
retraining DAG pushed to, with the project's alert and recording rules loaded. It also scrapes a
real ``slipway serve`` on the champion those runs promoted and a real ``slipway route`` in front of
it, with digits predict requests flowing through the router (``serving_target``). Pipeline,
model-quality, serving, router and canary panels must all return data (the runs' canary task
records a skipped rollout, so the canary weight and the decision totals exist).
"""

from __future__ import annotations

import json
import re

import pytest

from tests.monitoring.conftest import REPO, PipelineRuns, Serving

pytestmark = pytest.mark.slow

GRAFANA = REPO / "monitoring" / "grafana"
VARIABLES = {"$pipeline": "digits", "$model": "digits", "$__rate_interval": "1m", "$__range": "10m"}

SERVING = re.compile(r"slipway_serving_|slipway_router_|slipway-serving|slipway:serving")


def panels() -> list[tuple[str, dict]]:
    found = []
    for path in sorted(GRAFANA.glob("*.json")):
        board = json.loads(path.read_text())
        found += [(f"{path.stem}/{p['title']}", p) for p in board["panels"] if p["type"] != "row"]
    return found


def resolve(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unknown template variable in {expr}"
    return expr


def test_the_dashboards_are_the_generated_ones() -> None:
    from monitoring.generate import dashboards

    for name, text in dashboards().items():
        assert (GRAFANA / name).read_text() == text, f"{name} is stale: run python -m monitoring.generate"
    assert len(panels()) >= 30


@pytest.mark.parametrize(("title", "panel"), panels(), ids=[t for t, _ in panels()])
def test_panel_query_returns_data(
    pipeline_runs: PipelineRuns, request: pytest.FixtureRequest, title: str, panel: dict
) -> None:
    if SERVING.search(" ".join(t["expr"] for t in panel["targets"])):
        request.getfixturevalue("serving_target")
    for target in panel["targets"]:
        expr = resolve(target["expr"])
        result = pipeline_runs.prometheus.wait_for(expr, tries=25)
        assert result, f"{title}: no data for {expr}"
        assert all(len(sample["value"]) == 2 for sample in result)


def test_served_traffic_is_the_champions(pipeline_runs: PipelineRuns, serving_target: Serving) -> None:
    """The serving panels show the runs' champion (v2) answering the traffic the router forwarded."""
    query = pipeline_runs.prometheus.query
    served = query('slipway_serving_model_info{job="slipway-serving",model="digits"}')
    assert [(r["metric"]["version"], r["metric"]["variant"]) for r in served] == [("2", "stable")]
    codes = dict(serving_target.traffic.codes)
    assert set(codes) <= {200, 500}, codes  # valid requests: answers or injected faults only
    assert 0 < codes.get(500, 0) < codes.get(200, 0), codes  # FAULT_RATE fail on purpose
    # Prometheus saw no more answers than the client got (the last ones may not be scraped yet).
    forwarded = query('sum(slipway_router_requests_total{job="slipway-router",backend="stable",code="200"})')
    assert 0 < float(forwarded[0]["value"][1]) <= serving_target.traffic.codes[200]
    assert [float(r["value"][1]) for r in query('up{job=~"slipway-serving|slipway-router"}')] == [1.0, 1.0]


def test_run_metrics_tell_the_story(pipeline_runs: PipelineRuns) -> None:
    """The figures behind the panels are the runs' own: two successful runs, champion v2."""
    query = pipeline_runs.prometheus.query
    assert [float(r["value"][1]) for r in query('slipway_run_success{pipeline="digits"}')] == [1.0]
    assert float(query('slipway_registry_champion_version{model="digits"}')[0]["value"][1]) == 2
    blessed = query('slipway_gate_decisions_total{pipeline="digits",result="blessed"}')
    assert float(blessed[0]["value"][1]) == 2
    steps = {r["metric"]["step"] for r in query('slipway_step_success{pipeline="digits"} == 1')}
    assert steps == {"ingest", "validate", "train", "evaluate", "gate", "register", "canary", "promote"}
    # No instance label from the pushers: the groups are keyed by pipeline and step only.
    assert not [r for r in query('{job="slipway",instance!=""}')]
    # Model age and staleness are plain queries.
    age = float(
        query('time() - slipway_registry_champion_promoted_timestamp_seconds{model="digits"}')[0]["value"][1]
    )
    assert 0 <= age < 3600
    # Alerts evaluated on real data: nothing is wrong after two good runs.
    firing = query('ALERTS{alertstate="firing",alertname=~"Slipway.*"}')
    assert firing == [], firing
