"""The controller with in-process fakes for provider, router and target and a fake clock:
state in the store, no-op before due, resume, and what happens when metrics or canary vanish."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from slipway.config import RolloutConfig
from slipway.rollout.controller import Rollout
from slipway.rollout.providers import MetricsProvider, MetricsUnavailable
from slipway.rollout.routers import TrafficRouter, split
from slipway.rollout.targets import DeploymentTarget
from slipway.rollout.window import VariantWindow, Window
from slipway.store import open_store

POLICY = RolloutConfig(steps=[5, 100], interval_s=10, min_requests=10, insufficient_traffic_deadline_s=25)


def _variant(n: int, errors: int = 0) -> VariantWindow:
    return VariantWindow(
        requests={"200": n - errors, "500": errors},
        latency_buckets={"0.01": n, "+Inf": n},
        classes={str(i): n for i in range(10)},
    )


class Provider(MetricsProvider):
    def __init__(self) -> None:
        super().__init__("m")
        self.fail: str | None = None
        self.canary_errors = 0

    def mark(self) -> dict[str, Any]:
        return {"t": 0}

    def measure(self, mark: dict[str, Any]) -> Window:
        if self.fail:
            raise MetricsUnavailable(self.fail, f"{self.fail} metrics down")
        return Window(_variant(1000), _variant(50, self.canary_errors), 10.0, {"provider": "fake"})


class Router(TrafficRouter):
    def __init__(self) -> None:
        self.history: list[int] = []

    def set_canary_weight(self, percent: int) -> dict[str, int]:
        self.history.append(percent)
        return split(percent)

    def weights(self) -> dict[str, int]:
        return split(self.history[-1] if self.history else 0)


class Target(DeploymentTarget):
    def __init__(self) -> None:
        self.deployed: list[int] = []
        self.ready = True
        self.removed = 0
        self.promoted: list[int] = []

    def deploy_canary(self, version: int) -> dict[str, Any]:
        self.deployed.append(version)
        return {"pid": 1}

    def canary_ready(self, info: dict[str, Any]) -> bool:
        return self.ready

    def promote(self, version: int, info: dict[str, Any], router: TrafficRouter) -> None:
        self.promoted.append(version)
        router.set_canary_weight(0)
        self.remove_canary(info)

    def remove_canary(self, info: dict[str, Any]) -> None:
        self.removed += 1


@pytest.fixture
def parts(tmp_path: Path) -> dict[str, Any]:
    now = [1000.0]
    parts: dict[str, Any] = {
        "store": open_store(tmp_path.as_uri()),
        "provider": Provider(),
        "router": Router(),
        "target": Target(),
        "now": now,
    }
    parts["make"] = lambda: Rollout(
        parts["store"],
        "r/state.json",
        POLICY,
        model="m",
        provider=parts["provider"],
        router=parts["router"],
        target=parts["target"],
        clock=lambda: now[0],
    )
    return parts


def test_promotes_and_resumes_from_the_store(parts: dict[str, Any]) -> None:
    rollout = parts["make"]()
    state = rollout.start(2, 1)
    assert parts["router"].history == [5] and state["due"] == 1010
    assert rollout.analyse(state)["analyses"] == []  # not due: nothing happens
    parts["now"][0] = 1010
    state = rollout.analyse(state)
    assert state["progress"]["step"] == 1 and parts["router"].history == [5, 100]
    again = parts["make"]().start(2, 1)  # a restarted task
    assert again == state and parts["target"].deployed == [2]
    with pytest.raises(ValueError, match="v2, not v3"):
        parts["make"]().start(3, 1)
    parts["now"][0] = 1020
    state = rollout.analyse(again)
    assert state["status"] == "promoted" and parts["target"].promoted == [2]
    assert parts["store"].get_json("r/state.json")["analyses"][-1]["window"]["raw"] == {"provider": "fake"}


def test_failed_checks_roll_back_and_remove_the_canary(parts: dict[str, Any]) -> None:
    parts["provider"].canary_errors = 20
    rollout = parts["make"]()
    state = rollout.start(2, 1)
    for t in (1010, 1020):
        parts["now"][0] = t
        state = rollout.analyse(state)
    assert [a["decision"]["action"] for a in state["analyses"]] == ["hold", "rollback"]
    assert state["status"] == "rolled_back" and "error_rate" in state["reason"]
    assert parts["router"].history[-1] == 0 and parts["target"].removed == 1


def test_missing_metrics_hold_then_roll_back_and_a_dead_canary_rolls_back(parts: dict[str, Any]) -> None:
    parts["provider"].fail = "all"
    rollout = parts["make"]()
    state = rollout.start(2, 1)
    parts["now"][0] = 1010
    state = rollout.analyse(state)
    assert state["analyses"][-1]["decision"]["action"] == "hold"
    assert state["progress"]["failures"] == 0
    parts["now"][0] = 1030
    state = rollout.analyse(state)
    assert state["status"] == "rolled_back" and state["reason"].startswith("no metrics past the deadline")

    parts["store"].delete("r/state.json")
    parts["provider"].fail = None
    parts["target"].ready = False
    state = rollout.start(2, 1)
    parts["now"][0] = 1040
    state = rollout.analyse(state)
    assert state["status"] == "rolled_back" and state["reason"] == "canary unavailable"


def test_skip_is_recorded_with_its_reason(parts: dict[str, Any]) -> None:
    state = Rollout.skip(parts["store"], "s/state.json", model="m", candidate=4, reason="hotfix")
    assert state["status"] == "skipped" and state["reason"] == "canary skipped: hotfix"
    again = Rollout.skip(parts["store"], "s/state.json", model="m", candidate=4, reason="other")
    assert again["reason"] == "canary skipped: hotfix"
