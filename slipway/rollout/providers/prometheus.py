"""Prometheus provider: PromQL over the HTTP API, templated by model, variant and window.

Each analysis asks, at the window's end, for each counter's increase over the window's W seconds
(templated by model, variant and W), so stable and canary are compared over the same seconds.
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

# The increase of a cumulative counter between the window's two ends: now minus ``offset W``, and
# for a series born inside the window (a canary's first 5xx) its whole value; a restarted server
# (counter reset) counts from zero. No extrapolation: short windows stay exact.
DELTA = (
    "sum by ({by}) (clamp_min({metric}{{{selector}}} - {metric}{{{selector}}} offset {window}s, 0)"
    " or ({metric}{{{selector}}} unless {metric}{{{selector}}} offset {window}s))"
)
QUERIES = {
    "requests": ("slipway_serving_requests_total", "code"),
    "latency_buckets": ("slipway_serving_request_duration_seconds_bucket", "le"),
    "classes": ("slipway_serving_predictions_total", "class"),
}


def render(name: str, model: str, variant: str, window_s: int) -> str:
    """The PromQL of one field (``requests``, ``latency_buckets``, ``classes``) of one variant."""
    metric, by = QUERIES[name]
    selector = f'model="{_escape(model)}",variant="{_escape(variant)}"'
    return DELTA.format(metric=metric, by=by, selector=selector, window=window_s)


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
            for name, (_, by) in QUERIES.items():
                promql = render(name, self.model, variant, window_s)
                result = self.query(promql, end)
                raw["queries"][f"{variant}.{name}"] = {"promql": promql, "result": result}
                fields[name] = {
                    item["metric"].get(by, ""): float(item["value"][1])
                    for item in result
                    if not math.isnan(float(item["value"][1]))
                }
            variants[variant] = VariantWindow(**fields)
        return Window(variants["stable"], variants["canary"], float(window_s), raw)
