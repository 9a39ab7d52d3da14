"""Deployment targets: one interface, a factory, one file per backend (local processes, Kubernetes).

A target starts the candidate version as the canary, says whether it is ready, replaces stable
with it on promotion and removes it afterwards (promotion or rollback). What a target needs to find
its canary again (a pid, a Deployment name) is returned by ``deploy_canary`` and kept in the
rollout state, so a resumed rollout can still remove it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from slipway.config import PipelineConfig
from slipway.rollout.routers import TrafficRouter


class DeploymentTarget(ABC):
    @abstractmethod
    def deploy_canary(self, version: int) -> dict[str, Any]:
        """Start ``version`` as the canary (idempotent) and wait until it is ready."""

    @abstractmethod
    def canary_ready(self, info: dict[str, Any]) -> bool:
        """Whether the canary still answers its readiness probe."""

    @abstractmethod
    def promote(self, version: int, info: dict[str, Any], router: TrafficRouter) -> None:
        """Replace stable with ``version`` without dropping traffic, then remove the canary."""

    @abstractmethod
    def remove_canary(self, info: dict[str, Any]) -> None:
        """Stop and delete the canary (idempotent)."""


def make_target(config: PipelineConfig) -> DeploymentTarget:
    if config.rollout.target == "kubernetes":
        from slipway.rollout.targets.kubernetes import KubernetesTarget

        return KubernetesTarget(config.rollout.namespace, config.rollout.deployment_name)
    from slipway.rollout.targets.local import LocalTarget

    return LocalTarget(
        config.store_url, config.model_name, config.rollout.stable_url, config.rollout.canary_url
    )
