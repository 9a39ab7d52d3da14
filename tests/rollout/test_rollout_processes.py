"""Canary rollouts against real processes: a real Prometheus scraping real Slipway servers
behind the real router, traffic replayed from the digits images; and the deferrable Airflow
operator, its intervals waited in real serialized ``DateTimeTrigger`` runs, restarted mid-rollout.

v1 and v2 are good models (different seeds); v3 was trained on corrupted labels (every digit
mapped to ``y % 3``) so it answers 200 OK while predicting the wrong things. Stable starts as v1;
a promotion makes the candidate stable, and "good candidate" is always the good version that is
not stable. Each test prints the figures the issue asks for (``pytest -s`` shows them). One
module, one set of processes: server starts dominate the time.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow.sdk.exceptions import TaskDeferred

from slipway.config import RolloutConfig, load_config
from slipway.rollout.controller import summary
from slipway.rollout.replay import TrafficReplayer
from slipway.store import open_store
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
    versions["good_ones"] = (versions["stable"], versions["good"])
    fleet = Fleet(root, store_url, versions["stable"])
    fleet.versions = versions  # type: ignore[attr-defined]
    with fleet.running():
        yield fleet


def _good(fleet: Fleet) -> int:
    """The good version that is not stable now."""
    return next(v for v in fleet.versions["good_ones"] if v != fleet.stable_version)  # type: ignore[attr-defined]


def _replayer(fleet: Fleet, rate: float = 0.0) -> TrafficReplayer:
    return TrafficReplayer(
        fleet.urls["router"], MODEL, fleet.x[1400:], rate=rate, threads=4, instances_per_request=16
    )


def _report(name: str, state: dict, traffic: dict) -> dict:
    numbers = figures(state, traffic)
    print(f"\n[{name}] " + json.dumps(numbers))
    print("\n".join(summary(state)))
    return numbers


class _TI:
    def __init__(self, registered: dict[str, Any]) -> None:
        self.registered = registered
        self.pushed: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str) -> dict[str, Any]:
        assert task_ids == "register"
        return self.registered

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def _config(fleet: Fleet, **rollout: Any) -> str:
    path = fleet.root / "digits.yaml"
    raw = {
        "name": "digits",
        "model_name": MODEL,
        "store_url": fleet.store_url,
        "data": {"source": {"kind": "digits"}, "input_shape": [8, 8], "num_classes": 10},
        "rollout": {
            "enabled": True,
            "steps": [1, 50, 100],
            "interval_s": 2,
            "min_requests": 3,
            "max_latency_p99_s": 2.5,
            "router_url": fleet.urls["router"],
            "stable_url": fleet.urls["stable"],
            "canary_url": fleet.urls["canary"],
            **rollout,
        },
    }
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def _fire(deferred: TaskDeferred) -> Any:
    """Serialize the trigger, rebuild it from its kwargs (as the triggerer does) and run it."""
    classpath, kwargs = deferred.trigger.serialize()
    module, name = classpath.rsplit(".", 1)
    trigger = getattr(importlib.import_module(module), name)(**kwargs)

    async def first() -> Any:
        async for event in trigger.run():
            return event

    return asyncio.run(first())


def _operator(path: str) -> Any:
    from operators.canary import SlipwayCanaryOperator

    return SlipwayCanaryOperator(task_id="canary", config_path=path)


def test_airflow_task_restarted_mid_rollout_resumes_at_the_same_step(fleet: Fleet) -> None:
    path = _config(fleet)
    version = _good(fleet)
    ti = _TI({"version": version})
    context: dict[str, Any] = {"run_id": "manual__restart", "ti": ti, "params": {}, "task": None}
    store = open_store(fleet.store_url)
    key = "runs/digits/manual__restart/canary/rollout.json"
    traffic = TrafficReplayer(fleet.urls["router"], MODEL, fleet.x[1400:], threads=4).start()
    try:
        with pytest.raises(TaskDeferred) as first:
            _operator(path).execute(context)
        started = store.get_json(key)
        assert started["progress"]["step"] == 0 and started["weights"] == {"stable": 99, "canary": 1}
        event = _fire(first.value)
        with pytest.raises(TaskDeferred) as second:  # the first analysis: advance to 50 %
            _operator(path).resume(context, event)
        advanced = store.get_json(key)
        assert advanced["progress"]["step"] == 1 and len(advanced["analyses"]) == 1

        # The worker dies here; the retry executes the task from the start.
        with pytest.raises(TaskDeferred) as restarted:
            _operator(path).execute(context)
        resumed = store.get_json(key)
        assert resumed["progress"] == advanced["progress"]
        assert resumed["canary"] == advanced["canary"]  # the same canary process, not a new one
        assert len(resumed["analyses"]) == 1
        assert restarted.value.trigger.serialize() == second.value.trigger.serialize()

        deferred = restarted.value
        result = None
        while result is None:
            try:
                result = _operator(path).resume(context, _fire(deferred))
            except TaskDeferred as again:
                deferred = again
    finally:
        traffic.stop()
    assert result["status"] == "promoted", result
    final = store.get_json(key)
    assert [a["step"] for a in final["analyses"]] == [0, 1, 2]
    assert all(a["window"]["raw"]["provider"] == "scrape" for a in final["analyses"])
    fleet.stable_version = version


def test_params_switch_skips_with_reason(fleet: Fleet) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    path = _config(fleet)
    ti = _TI({"version": 2})
    context = {"run_id": "manual__skip", "ti": ti, "params": {"skip_canary": True}, "task": None}
    with pytest.raises(AirflowFailException, match="skip_canary_reason"):
        _operator(path).execute(context)
    context["params"] = {"skip_canary": True, "skip_canary_reason": "hotfix for incident 42"}
    result = _operator(path).execute(context)
    assert result["status"] == "skipped" and "incident 42" in result["reason"]
    assert load_config(path).rollout.enabled


def test_fault_injected_canary_is_rolled_back(fleet: Fleet) -> None:
    rollout = fleet.rollout("faulty", POLICY, canary_args=["--fault-rate", "0.5"])
    with _replayer(fleet) as traffic:
        state = rollout.run(_good(fleet), fleet.stable_version)  # type: ignore[attr-defined]
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
        state = rollout.run(_good(fleet), fleet.stable_version)  # type: ignore[attr-defined]
    _report("low traffic", state, traffic.totals())
    actions = [a["decision"]["action"] for a in state["analyses"]]
    assert actions[-1] == "rollback" and set(actions[:-1]) == {"hold"} and len(actions) >= 2
    assert state["reason"].startswith("insufficient traffic")
    assert state["progress"]["failures"] == 0


def test_canary_killed_mid_rollout_rolls_back(fleet: Fleet) -> None:
    rollout = fleet.rollout("killed", POLICY, provider="scrape")
    state = rollout.start(_good(fleet), fleet.stable_version)  # type: ignore[attr-defined]
    os.kill(state["canary"]["pid"], signal.SIGKILL)
    with _replayer(fleet) as traffic:
        state = rollout.run(_good(fleet), fleet.stable_version)  # type: ignore[attr-defined]
    _report("canary killed", state, traffic.totals())
    assert state["status"] == "rolled_back" and state["reason"].startswith("canary unavailable")
    assert rollout.router.weights() == {"stable": 100, "canary": 0}


def test_good_candidate_is_promoted(fleet: Fleet) -> None:
    rollout = fleet.rollout("good", POLICY)
    with _replayer(fleet) as traffic:
        state = rollout.run(_good(fleet), fleet.stable_version)  # type: ignore[attr-defined]
    numbers = _report("good", state, traffic.totals())
    candidate = state["candidate"]
    assert state["status"] == "promoted", state["reason"]
    assert [a["weight"] for a in state["analyses"]] == POLICY.steps
    assert rollout.target.serving_version("stable") == candidate
    assert rollout.router.weights() == {"stable": 100, "canary": 0}
    assert numbers["seconds_with_traffic"] > 0
    # resumed from the store, a finished rollout stays finished (no second deployment)
    again = fleet.rollout("good", POLICY).run(candidate, fleet.stable_version)  # type: ignore[attr-defined]
    assert again["analyses"] == state["analyses"]


def test_stored_state_has_raw_queries(fleet: Fleet) -> None:
    state = open_store(fleet.store_url).get_json("rollouts/faulty/state.json")
    raw = state["analyses"][0]["window"]["raw"]
    assert raw["provider"] == "prometheus"
    assert "slipway_serving_requests_total" in raw["queries"]["canary.requests"]["promql"]
    assert Path(fleet.root).exists()
