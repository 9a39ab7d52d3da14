"""The rollout's pipeline metrics: canary weight and decision totals, exported as text files."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from slipway import metrics
from slipway.config import parse_config
from slipway.rollout.reporting import new_decisions, report_rollout
from slipway.store import open_store


def _config(tmp_path: Path):
    return parse_config(
        {
            "name": "digits",
            "model_name": "digits",
            "store_url": f"file://{tmp_path / 'store'}",
            "data": {"source": {"kind": "digits"}, "input_shape": [8, 8], "num_classes": 10},
            "metrics": {"textfile_dir": str(tmp_path / "metrics")},
        }
    )


def _samples(folder: Path) -> dict[tuple[str, str], float]:
    text = metrics.read_textfiles(folder)
    return {
        (s.name, s.labels.get("result", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith(("slipway_canary", "slipway_rollout"))
    }


def _analysis(action: str) -> dict:
    return {"decision": {"action": action}}


def test_each_decision_is_counted_once_and_the_weight_follows(tmp_path: Path) -> None:
    config = _config(tmp_path)
    store = open_store(config.store_url)
    state = {"status": "running", "analyses": [_analysis("advance")], "weights": {"stable": 90, "canary": 10}}
    report_rollout(config, store, state, seen=0)
    state["analyses"] += [_analysis("hold"), _analysis("rollback")]
    state["weights"] = {"stable": 100, "canary": 0}
    report_rollout(config, store, state, seen=1)  # only the two new analyses count
    samples = _samples(tmp_path / "metrics")
    assert samples[("slipway_canary_weight", "")] == 0
    assert samples[("slipway_rollout_decisions_total", "advance")] == 1
    assert samples[("slipway_rollout_decisions_total", "hold")] == 1
    assert samples[("slipway_rollout_decisions_total", "rollback")] == 1
    assert samples[("slipway_rollout_decisions_total", "promote")] == 0


def test_a_skipped_rollout_is_one_decision() -> None:
    assert new_decisions({"status": "skipped", "analyses": []}, seen=0) == ["skipped"]
    assert new_decisions({"status": "running", "analyses": [_analysis("advance")]}, seen=1) == []
