"""The rollout tests' real processes: the local canary sandbox (``slipway.rollout.sandbox``)."""

from slipway.rollout.sandbox import MODEL, figures, train_and_register
from slipway.rollout.sandbox import Sandbox as Fleet

__all__ = ["MODEL", "Fleet", "figures", "train_and_register"]
