"""Metrics providers: one interface, a factory, one file per backend.

A provider measures a window in two calls: ``mark()`` at the window's start returns a small
JSON-able mark (kept in the rollout state, so a resumed rollout measures the same window), and
``measure(mark)`` at its end returns stable's and canary's increases since the mark.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from slipway.config import RolloutConfig
from slipway.rollout.window import Window


class MetricsUnavailable(RuntimeError):
    """A variant's metrics could not be read; ``variant`` names which."""

    def __init__(self, variant: str, message: str) -> None:
        super().__init__(message)
        self.variant = variant


class MetricsProvider(ABC):
    def __init__(self, model: str) -> None:
        self.model = model

    @abstractmethod
    def mark(self) -> dict[str, Any]:
        """The start of a window."""

    @abstractmethod
    def measure(self, mark: dict[str, Any]) -> Window:
        """Stable and canary from ``mark`` to now."""


def make_provider(config: RolloutConfig, model: str) -> MetricsProvider:
    if config.metrics_provider == "prometheus":
        from slipway.rollout.providers.prometheus import PrometheusProvider

        assert config.prometheus_url  # the config validator requires it
        return PrometheusProvider(model, config.prometheus_url)
    from slipway.rollout.providers.scrape import ScrapeProvider

    return ScrapeProvider(model, {"stable": config.stable_url, "canary": config.canary_url})
