"""Traffic routers: one interface, a factory, one file per backend (local router, Gateway API).

A router splits traffic between the ``stable`` and ``canary`` backends by integer percent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from slipway.config import RolloutConfig


class TrafficRouter(ABC):
    @abstractmethod
    def set_canary_weight(self, percent: int) -> dict[str, int]:
        """Send ``percent`` of the traffic to the canary and the rest to stable; the new weights."""

    @abstractmethod
    def weights(self) -> dict[str, int]:
        """The current weights by backend (``stable``, ``canary``)."""


def split(percent: int) -> dict[str, int]:
    if not 0 <= percent <= 100:
        raise ValueError(f"a canary weight is a percent from 0 to 100, got {percent}")
    return {"stable": 100 - percent, "canary": percent}


def make_router(config: RolloutConfig) -> TrafficRouter:
    if config.router == "gateway":
        from slipway.rollout.routers.gateway import GatewayRouter

        return GatewayRouter(config.namespace, config.route_name)
    from slipway.rollout.routers.local import LocalRouter

    return LocalRouter(config.router_url)
