"""What a metrics provider measured for one variant over one analysis window (counts, not rates)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class VariantWindow:
    """Increases over the window of one variant's serving metrics.

    ``requests`` by HTTP status code, ``latency_buckets`` the cumulative histogram buckets by upper
    bound (``"+Inf"`` included), ``classes`` predicted instances by class index.
    """

    requests: dict[str, float] = field(default_factory=dict)
    latency_buckets: dict[str, float] = field(default_factory=dict)
    classes: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.requests.values())

    @property
    def errors(self) -> float:
        """Server errors (5xx); a 4xx is the client's fault, not the model's."""
        return sum(v for code, v in self.requests.items() if code.startswith("5"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> VariantWindow:
        return cls(**raw)


@dataclass(frozen=True)
class Window:
    """Stable and canary over the same window, and the raw answers they were computed from."""

    stable: VariantWindow
    canary: VariantWindow
    seconds: float
    raw: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stable": self.stable.to_dict(),
            "canary": self.canary.to_dict(),
            "seconds": self.seconds,
            "raw": self.raw,
        }


def bucket_bound(le: str) -> float:
    return math.inf if le in ("+Inf", "inf", "Inf") else float(le)


def quantile(q: float, buckets: dict[str, float]) -> float | None:
    """``histogram_quantile`` over cumulative buckets (linear inside a bucket, as Prometheus does).

    ``None`` when the window has no observations.
    """
    ordered = sorted(((bucket_bound(le), count) for le, count in buckets.items()), key=lambda b: b[0])
    if not ordered or ordered[-1][1] <= 0:
        return None
    total = ordered[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # as Prometheus: the highest finite bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound
