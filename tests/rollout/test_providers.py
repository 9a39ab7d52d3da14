"""Providers' pure parts: the scrape parser and counter deltas, the templated PromQL."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from slipway import metrics
from slipway.config import RolloutConfig
from slipway.rollout.providers import make_provider
from slipway.rollout.providers.prometheus import PrometheusProvider, render
from slipway.rollout.providers.scrape import ScrapeProvider, _increase, parse_counters


def _exposition(variant: str, ok: int, errors: int, classes: dict[str, int]) -> str:
    registry = CollectorRegistry()
    names = [n for n in metrics.METRICS if n.startswith("slipway_serving_")]
    made = metrics.collectors(names, registry)
    ident = {"model": "digits", "version": "2", "variant": variant}
    made["slipway_serving_requests_total"].labels(**ident, code="200").inc(ok)
    if errors:
        made["slipway_serving_requests_total"].labels(**ident, code="500").inc(errors)
    for _ in range(ok):
        made["slipway_serving_request_duration_seconds"].labels(**ident).observe(0.003)
    for cls, n in classes.items():
        made["slipway_serving_predictions_total"].labels(**ident, **{"class": cls}).inc(n)
    other = {"model": "other", "version": "1", "variant": variant}
    made["slipway_serving_requests_total"].labels(**other, code="200").inc(1000)
    return metrics.scrape(registry)[0].decode()


def test_parse_counters_reads_one_models_serving_metrics() -> None:
    parsed = parse_counters(_exposition("canary", 7, 3, {"0": 5, "4": 2}), "digits")
    assert parsed["requests"] == {"200": 7.0, "500": 3.0}
    assert parsed["classes"] == {"0": 5.0, "4": 2.0}
    assert parsed["latency_buckets"]["+Inf"] == 7.0 and parsed["latency_buckets"]["0.005"] == 7.0
    assert parsed["latency_buckets"]["0.0025"] == 0.0


def test_increase_treats_a_lower_counter_as_a_restart() -> None:
    assert _increase({"200": 15.0, "500": 2.0}, {"200": 10.0}) == {"200": 5.0, "500": 2.0}
    assert _increase({"200": 3.0}, {"200": 10.0}) == {"200": 3.0}


def test_promql_is_templated_by_model_variant_and_window() -> None:
    query = render("requests", 'di"gits', "canary", 30)
    assert 'model="di\\"gits",variant="canary"' in query
    assert "offset 30s" in query and query.startswith("sum by (code)")
    assert render("latency_buckets", "m", "stable", 5).startswith("sum by (le)")
    assert render("classes", "m", "stable", 5).startswith("sum by (class)")


def test_factory() -> None:
    assert isinstance(make_provider(RolloutConfig(), "m"), ScrapeProvider)
    prom = make_provider(RolloutConfig(metrics_provider="prometheus", prometheus_url="http://p:9090/"), "m")
    assert isinstance(prom, PrometheusProvider) and prom.url == "http://p:9090"
    with pytest.raises(ValueError, match="prometheus_url"):
        RolloutConfig(metrics_provider="prometheus")
