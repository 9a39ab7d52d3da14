"""The deferrable canary operator against real processes: each interval is a serialized
``DateTimeTrigger`` run for real; the task is "restarted" (a new operator instance executing
from scratch, as after a worker crash) mid-rollout and resumes at the same step, same canary."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from airflow.sdk.exceptions import TaskDeferred

from slipway.config import load_config
from slipway.rollout.replay import TrafficReplayer
from slipway.store import open_store
from tests.rollout.fleet import MODEL, Fleet, train_and_register

pytestmark = pytest.mark.slow


class _TI:
    def __init__(self, registered: dict[str, Any]) -> None:
        self.registered = registered
        self.pushed: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str) -> dict[str, Any]:
        assert task_ids == "register"
        return self.registered

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("canary-op")
    store_url = (root / "store").as_uri()
    stable = train_and_register(store_url, seed=1)
    fleet = Fleet(root, store_url, stable)
    fleet.candidate = train_and_register(store_url, seed=2)  # type: ignore[attr-defined]
    with fleet.running(with_prometheus=False):
        yield fleet


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


def test_restarted_task_resumes_at_the_same_step(fleet: Fleet) -> None:
    path = _config(fleet)
    version = fleet.candidate  # type: ignore[attr-defined]
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
