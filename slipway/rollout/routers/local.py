"""The local router (``slipway route``) through its admin API."""

from __future__ import annotations

import os

from slipway.rollout.routers import TrafficRouter, split
from slipway.serving.router import LocalRouterClient


class LocalRouter(TrafficRouter):
    def __init__(self, url: str, token: str | None = None) -> None:
        self.client = LocalRouterClient(url, token or os.environ.get("SLIPWAY_ROUTER_ADMIN_TOKEN") or None)

    def set_canary_weight(self, percent: int) -> dict[str, int]:
        weights = split(percent)
        if weights["stable"] == 0 and weights["canary"] == 0:  # pragma: no cover - split never does
            raise ValueError("no backend would get traffic")
        return self.client.set_weights(weights)

    def weights(self) -> dict[str, int]:
        return self.client.get_weights()
