"""Canary rollouts against real processes: a real Prometheus scraping real Slipway servers
behind the real router, traffic replayed from the digits images.

Stable is v1; v2 is a good retrained model; v3 was trained on corrupted labels (every digit
mapped to ``y % 3``) so it answers 200 OK while predicting the wrong things. Each test prints the
figures the issue asks for (``pytest -s`` shows them).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from slipway.config import RolloutConfig
from slipway.rollout.controller import summary
from slipway.rollout.replay import TrafficReplayer
from tests.rollout.fleet import MODEL, Fleet, figures, train_and_register

pytestmark = pytest.mark.slow

POLICY = RolloutConfig(
    steps=[1, 10, 50, 100],
    interval_s=3,
    min_requests=5,
    insufficient_traffic_deadline_s=6,
    failure_limit=2,
    max_latency_p99_s=2.5,
)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("rollout")
    store_url = (root / "store").as_uri()
    versions = {
        "stable": train_and_register(store_url, seed=1),
        "good": train_and_register(store_url, seed=2),
        "skewed": train_and_register(store_url, seed=3, relabel=lambda y: y % 3),
    }
    fleet = Fleet(root, store_url, versions["stable"])
    fleet.versions = versions  # type: ignore[attr-defined]
    with fleet.running():
        yield fleet


def _replayer(fleet: Fleet, rate: float = 0.0) -> TrafficReplayer:
    return TrafficReplayer(
        fleet.urls["router"], MODEL, fleet.x[1400:], rate=rate, threads=4, instances_per_request=16
    )


def _report(name: str, state: dict, traffic: dict) -> dict:
    numbers = figures(state, traffic)
    print(f"\n[{name}] " + json.dumps(numbers))
    print("\n".join(summary(state)))
    return numbers


def test_fault_injected_canary_is_rolled_back(fleet: Fleet) -> None:
    rollout = fleet.rollout("faulty", POLICY, canary_args=["--fault-rate", "0.5"])
    with _replayer(fleet) as traffic:
        state = rollout.run(fleet.versions["good"], fleet.stable_version)  # type: ignore[attr-defined]
    numbers = _report("fault 50 %", state, traffic.totals())
    assert state["status"] == "rolled_back"
    assert "error_rate" in state["reason"]
    assert numbers["exposed_share"] <= 0.01 and numbers["intervals"] <= 2
    assert fleet.provider("scrape") and not rollout.target.canary_ready({})  # type: ignore[attr-defined]


def test_skewed_predictions_rolled_back_with_zero_errors(fleet: Fleet) -> None:
    rollout = fleet.rollout("skewed", POLICY)
    with _replayer(fleet) as traffic:
        state = rollout.run(fleet.versions["skewed"], fleet.stable_version)  # type: ignore[attr-defined]
    numbers = _report("skewed predictions", state, traffic.totals())
    assert state["status"] == "rolled_back"
    assert "prediction_jsd" in state["reason"] and "error_rate" not in state["reason"]
    assert not any(code.startswith("canary/5") for code in traffic.totals()["by_backend_code"])
    assert numbers["exposed_share"] <= 0.01 and numbers["intervals"] <= 2


def test_low_traffic_holds_then_rolls_back(fleet: Fleet) -> None:
    rollout = fleet.rollout("quiet", POLICY, provider="scrape")
    with _replayer(fleet, rate=20) as traffic:  # 1 % of 20/s: under 5 canary requests per 3 s
        state = rollout.run(fleet.versions["good"], fleet.stable_version)  # type: ignore[attr-defined]
    _report("low traffic", state, traffic.totals())
    actions = [a["decision"]["action"] for a in state["analyses"]]
    assert actions[-1] == "rollback" and set(actions[:-1]) == {"hold"} and len(actions) >= 2
    assert state["reason"].startswith("insufficient traffic")
    assert state["progress"]["failures"] == 0


def test_canary_killed_mid_rollout_rolls_back(fleet: Fleet) -> None:
    rollout = fleet.rollout("killed", POLICY, provider="scrape")
    state = rollout.start(fleet.versions["good"], fleet.stable_version)  # type: ignore[attr-defined]
    os.kill(state["canary"]["pid"], signal.SIGKILL)
    with _replayer(fleet) as traffic:
        state = rollout.run(fleet.versions["good"], fleet.stable_version)  # type: ignore[attr-defined]
    _report("canary killed", state, traffic.totals())
    assert state["status"] == "rolled_back" and state["reason"].startswith("canary unavailable")
    assert rollout.router.weights() == {"stable": 100, "canary": 0}


def test_good_candidate_is_promoted(fleet: Fleet) -> None:
    rollout = fleet.rollout("good", POLICY)
    with _replayer(fleet) as traffic:
        state = rollout.run(fleet.versions["good"], fleet.stable_version)  # type: ignore[attr-defined]
    numbers = _report("good", state, traffic.totals())
    assert state["status"] == "promoted", state["reason"]
    assert [a["weight"] for a in state["analyses"]] == POLICY.steps
    assert rollout.target.serving_version("stable") == fleet.versions["good"]  # type: ignore[attr-defined]
    assert rollout.router.weights() == {"stable": 100, "canary": 0}
    assert numbers["seconds_with_traffic"] > 0
    # resumed from the store, a finished rollout stays finished (no second deployment)
    again = fleet.rollout("good", POLICY).run(fleet.versions["good"], fleet.stable_version)  # type: ignore[attr-defined]
    assert again["analyses"] == state["analyses"]


def test_stored_state_has_raw_queries(fleet: Fleet) -> None:
    from slipway.store import open_store

    state = open_store(fleet.store_url).get_json("rollouts/faulty/state.json")
    raw = state["analyses"][0]["window"]["raw"]
    assert raw["provider"] == "prometheus"
    assert "slipway_serving_requests_total" in raw["queries"]["canary.requests"]["promql"]
    assert Path(fleet.root).exists()
