"""The embedded default provider: scrape the servers' own ``/metrics`` and subtract two scrapes.

No Prometheus needed. The mark holds the cumulative counters of each variant at the window's
start; a counter lower at the end than at the mark was reset (the server restarted), and then
the end value is the increase, as Prometheus's ``increase()`` assumes.
"""

from __future__ import annotations

import time
import urllib.request
from typing import Any

from slipway.rollout.providers import MetricsProvider, MetricsUnavailable
from slipway.rollout.window import VariantWindow, Window

_FIELDS = {
    "slipway_serving_requests_total": ("requests", "code"),
    "slipway_serving_request_duration_seconds_bucket": ("latency_buckets", "le"),
    "slipway_serving_predictions_total": ("classes", "class"),
}


def parse_counters(text: str, model: str) -> dict[str, dict[str, float]]:
    """The cumulative serving counters of ``model`` in a Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, dict[str, float]] = {"requests": {}, "latency_buckets": {}, "classes": {}}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            field = _FIELDS.get(sample.name)
            if field is None or sample.labels.get("model") != model:
                continue
            name, label = field
            key = sample.labels.get(label, "")
            if label == "le":
                key = "+Inf" if key in ("+Inf", "inf") else repr(float(key))
            out[name][key] = out[name].get(key, 0.0) + float(sample.value)
    return out


def _increase(end: dict[str, float], start: dict[str, float]) -> dict[str, float]:
    return {k: (v - start.get(k, 0.0) if v >= start.get(k, 0.0) else v) for k, v in end.items()}


class ScrapeProvider(MetricsProvider):
    def __init__(self, model: str, urls: dict[str, str], timeout: float = 5.0) -> None:
        super().__init__(model)
        self.urls = {variant: url.rstrip("/") for variant, url in urls.items()}
        self.timeout = timeout

    def _scrape(self, variant: str) -> dict[str, dict[str, float]]:
        url = f"{self.urls[variant]}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as answer:
                return parse_counters(answer.read().decode(), self.model)
        except (OSError, ValueError) as exc:
            raise MetricsUnavailable(variant, f"scraping {variant} at {url} failed: {exc}") from None

    def mark(self) -> dict[str, Any]:
        return {"time": time.time(), **{variant: self._scrape(variant) for variant in self.urls}}

    def measure(self, mark: dict[str, Any]) -> Window:
        end = {variant: self._scrape(variant) for variant in self.urls}
        windows = {
            variant: VariantWindow(
                **{name: _increase(values, mark[variant][name]) for name, values in end[variant].items()}
            )
            for variant in self.urls
        }
        return Window(
            stable=windows["stable"],
            canary=windows["canary"],
            seconds=time.time() - mark["time"],
            raw={"provider": "scrape", "start": mark, "end": end},
        )
