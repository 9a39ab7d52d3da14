"""Prometheus provider: PromQL over the HTTP API, templated by model, variant and window.

Each analysis asks for ``increase(...[W s])`` evaluated at the window's end, so stable and canary
are compared over exactly the same seconds. A series that appears during the window (the first
5xx of a canary) counts from its second sample on, as ``increase()`` does everywhere.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
import urllib.request
from typing import Any

from slipway.rollout.providers import MetricsProvider, MetricsUnavailable
from slipway.rollout.window import VariantWindow, Window

QUERIES = {
    "requests": "sum by (code) (increase(slipway_serving_requests_total{{{selector}}}[{window}s]))",
    "latency_buckets": (
        "sum by (le) (increase(slipway_serving_request_duration_seconds_bucket{{{selector}}}[{window}s]))"
    ),
    "classes": "sum by (class) (increase(slipway_serving_predictions_total{{{selector}}}[{window}s]))",
}
_BY = {"requests": "code", "latency_buckets": "le", "classes": "class"}


def render(query: str, model: str, variant: str, window_s: int) -> str:
    selector = f'model="{_escape(model)}",variant="{_escape(variant)}"'
    return query.format(selector=selector, window=window_s)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class PrometheusProvider(MetricsProvider):
    def __init__(self, model: str, url: str, timeout: float = 10.0) -> None:
        super().__init__(model)
        self.url = url.rstrip("/")
        self.timeout = timeout

    def query(self, promql: str, at: float) -> list[dict[str, Any]]:
        params = urllib.parse.urlencode({"query": promql, "time": f"{at:.3f}"})
        url = f"{self.url}/api/v1/query?{params}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as answer:
                body = json.loads(answer.read())
        except (OSError, ValueError) as exc:
            raise MetricsUnavailable("all", f"Prometheus query failed ({url}): {exc}") from None
        if body.get("status") != "success":
            raise MetricsUnavailable("all", f"Prometheus refused {promql!r}: {body.get('error')}")
        return body["data"]["result"]

    def mark(self) -> dict[str, Any]:
        return {"time": time.time()}

    def measure(self, mark: dict[str, Any]) -> Window:
        end = time.time()
        window_s = max(1, math.ceil(end - mark["time"]))
        raw: dict[str, Any] = {"provider": "prometheus", "time": end, "window_s": window_s, "queries": {}}
        variants = {}
        for variant in ("stable", "canary"):
            fields = {}
            for name, template in QUERIES.items():
                promql = render(template, self.model, variant, window_s)
                result = self.query(promql, end)
                raw["queries"][f"{variant}.{name}"] = {"promql": promql, "result": result}
                fields[name] = {
                    item["metric"].get(_BY[name], ""): float(item["value"][1])
                    for item in result
                    if not math.isnan(float(item["value"][1]))
                }
            variants[variant] = VariantWindow(**fields)
        return Window(variants["stable"], variants["canary"], float(window_s), raw)
