"""Tuning without training: the search-space config, the study records' conditional writes, the
Optuna ask/prune wiring over them, and the leaner variant's decision table."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from slipway.config import ConfigError, GateConfig, LeanerConfig, load_config, parse_config
from slipway.store import open_store
from slipway.tuning import study as records
from slipway.tuning.space import training_for
from slipway.tuning.study import StudyMismatch, StudyStore, best_trial

REPO = Path(__file__).resolve().parents[2]


def digits_config(**tuning):
    return parse_config(
        {
            "name": "digits",
            "model_name": "digits",
            "store_url": "file:///tmp/unused",
            "data": {"source": {"kind": "digits"}, "input_shape": [8, 8], "num_classes": 10},
            "tuning": {"trials": 4, **tuning},
        }
    )


# --------------------------------------------------------------------------- config


def test_reference_pipeline_has_a_valid_sweep() -> None:
    tuning = load_config(REPO / "dags" / "pipelines" / "fashion_mnist.yaml").tuning
    assert tuning is not None and tuning.space.conv_blocks == [1, 2] and tuning.leaner.enabled


@pytest.mark.parametrize(
    ("tuning", "message"),
    [
        ({"space": {"learning_rate": {"low": 0.1, "high": 0.01}}}, "high (0.01) is below low (0.1)"),
        ({"space": {"learning_rate": {"low": 0, "high": 0.1, "log": True}}}, "log range needs low > 0"),
        ({"space": {"epochs": [0, 3]}}, "epochs must be >= 1"),
        ({"space": {"dropout": [0.2, 1.5]}}, "dropout must lie in"),
        ({"space": {"optimizer": ["adam", "lion"]}}, "tuning.space.optimizer"),
        ({"space": {"dense_units": []}}, "tuning.space.dense_units"),
        ({"trials": 0}, "tuning.trials"),
        ({"pruner": {"kind": "magic"}}, "tuning.pruner.kind"),
        ({"spaces": {}}, "unknown field"),
    ],
)
def test_bad_search_space_is_a_clear_config_error(tuning: dict, message: str) -> None:
    with pytest.raises(ConfigError, match="tuning") as info:
        digits_config(**tuning)
    assert message in str(info.value)


def test_tuning_needs_a_validation_split() -> None:
    raw = digits_config().model_dump(mode="json", exclude={"source_path"})
    raw["data"]["split"]["validation_fraction"] = 0
    with pytest.raises(ConfigError, match="validation split"):
        parse_config(raw)


def test_trial_params_build_the_model_they_name() -> None:
    params = {
        "conv_blocks": 2,
        "conv_filters": 16,
        "dense_layers": 2,
        "dense_units": 64,
        "dropout": 0.25,
        "optimizer": "adamw",
        "learning_rate": 0.002,
        "batch_size": 32,
        "epochs": 3,
    }
    training = training_for(params, digits_config().training)
    kinds = [layer.type for layer in training.layers]
    assert kinds == [
        "conv2d",
        "maxpool2d",
        "conv2d",
        "maxpool2d",
        "flatten",
        "dense",
        "dropout",
        "dense",
        "dropout",
    ]
    assert [layer.filters for layer in training.layers if layer.type == "conv2d"] == [16, 32]
    assert training.optimizer.name == "adamw" and training.optimizer.learning_rate == 0.002
    assert (training.batch_size, training.epochs) == (32, 3)
    assert training_for({**params, "conv_blocks": 0, "dropout": 0.0}, training).layers[0].type == "flatten"


# --------------------------------------------------------------------------- study records


@pytest.fixture
def study(tmp_path: Path) -> StudyStore:
    return StudyStore(open_store(f"file://{tmp_path / 'store'}"), "runs/digits/r1/tune/study")


def test_create_resumes_the_same_study_and_refuses_other_settings(study: StudyStore) -> None:
    config = digits_config()
    index = study.create(config, "digits-r1", now=100.0)
    assert sorted(index["trials"]) == ["0", "1", "2", "3"] and index["deadline_at"] is None
    study.record_result(0, {"state": records.COMPLETE, "value": 0.9})
    again = study.create(config, "digits-r1", now=999.0)  # a restarted setup task
    assert again["created_at"] == 100.0 and again["trials"]["0"]["state"] == records.COMPLETE
    # Parallelism and the wall-time budget may change on resume; the search space may not.
    study.create(digits_config(parallel=3, timeout_s=60), "digits-r1")
    with pytest.raises(StudyMismatch, match="other data, training or search-space settings"):
        study.create(digits_config(space={"epochs": 9}), "digits-r1")


def test_a_slot_keeps_its_first_params_and_its_first_outcome(study: StudyStore) -> None:
    study.create(digits_config(), "digits-r1")
    first = study.claim(1, {"epochs": 3}, {"claimed_at": 1})
    second = study.claim(1, {"epochs": 5}, {"claimed_at": 2})  # a retry that sampled again
    assert second["params"] == first["params"] == {"epochs": 3}
    study.record_result(1, {"state": records.COMPLETE, "value": 0.8})
    kept = study.record_result(1, {"state": records.COMPLETE, "value": 0.95})  # a duplicate run
    assert kept["value"] == 0.8 and study.read_index()["trials"]["1"]["value"] == 0.8


def test_concurrent_index_updates_lose_nothing(study: StudyStore) -> None:
    config = digits_config(trials=24)
    study.create(config, "digits-r1")
    barrier = threading.Barrier(8)

    def worker(offset: int) -> None:
        barrier.wait()
        for number in range(offset, 24, 8):
            study.start_attempt(number)
            study.record_result(number, {"state": records.COMPLETE, "value": number / 100})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    index = study.read_index()
    assert {n: e["state"] for n, e in index["trials"].items()} == {
        str(n): records.COMPLETE for n in range(24)
    }
    assert all(e["attempts"] == 1 for e in index["trials"].values())
    assert best_trial(index) == (23, index["trials"]["23"])


def test_finalize_accounts_for_every_slot(study: StudyStore) -> None:
    study.create(digits_config(), "digits-r1")
    study.claim(0, {"epochs": 3}, {})
    study.record_result(0, {"state": records.COMPLETE, "value": 0.7})
    study.claim(1, {"epochs": 3}, {})
    study.record_result(1, {"state": records.PRUNED, "value": 0.2})
    study.claim(2, {"epochs": 3}, {})  # killed: claimed, never recorded
    study.start_attempt(2)
    study.record_crash(2, 1, "Traceback...\nValueError: the model does not fit the input\n")
    index = study.finalize()  # slot 3 never started
    states = {n: e["state"] for n, e in index["trials"].items()}
    assert states == {"0": "complete", "1": "pruned", "2": "failed", "3": "skipped"}
    assert index["trials"]["2"]["error"] == "ValueError: the model does not fit the input"
    assert index["finalized"] is True and best_trial(index)[0] == 0
    assert study.finalize()["trials"] == index["trials"]  # idempotent


# --------------------------------------------------------------------------- Optuna over the records


def _history(values: list[float], curves: list[dict[int, float]]) -> list[dict]:
    base = {"conv_blocks": 0, "conv_filters": 32, "dense_layers": 1, "dense_units": 128}
    base |= {"dropout": 0.1, "optimizer": "adam", "learning_rate": 1e-3, "batch_size": 64, "epochs": 5}
    return [
        {
            "number": i,
            "params": base,
            "result": {"state": records.COMPLETE, "value": v, "intermediate_values": c},
        }
        for i, (v, c) in enumerate(zip(values, curves, strict=True))
    ]


def test_ask_is_reproducible_and_the_pruner_stops_a_lagging_curve() -> None:
    from slipway.tuning.engine import ask, should_prune

    tuning = digits_config(pruner={"kind": "median", "startup_trials": 1, "warmup_epochs": 1}).tuning
    assert tuning is not None
    history = _history([0.9, 0.92], [{1: 0.8, 2: 0.9}, {1: 0.82, 2: 0.92}])
    params = ask(tuning, history, 2)
    assert params == ask(tuning, history, 2)  # same history, same slot: same params
    assert set(params) == {
        "conv_blocks",
        "conv_filters",
        "dense_layers",
        "dense_units",
        "dropout",
        "optimizer",
        "learning_rate",
        "batch_size",
        "epochs",
    }
    assert should_prune(tuning, history, params, {1: 0.3, 2: 0.4}) is True
    assert should_prune(tuning, history, params, {1: 0.85, 2: 0.95}) is False
    assert should_prune(tuning, history, params, {1: 0.3}) is False  # warm-up epoch
    none = digits_config(pruner={"kind": "none"}).tuning
    assert should_prune(none, history, params, {1: 0.1, 2: 0.1}) is False


# --------------------------------------------------------------------------- leaner decision


def _variant(accuracy: float, ms: float = 0.1) -> dict:
    return {
        "accuracy": accuracy,
        "per_class": [{"class": 0, "name": "0", "recall": accuracy}],
        "latency": {"ms_per_example": ms, "batch_size": 32},
        "size": {"model_file_bytes": 1000},
    }


@pytest.mark.parametrize(
    ("delta", "p_value", "ratio", "ms", "replaces", "failed"),
    [
        (-0.001, 0.6, 3.5, 0.1, True, []),
        (+0.002, 0.4, 2.0, 0.12, True, []),
        (-0.004, 0.3, 3.5, 0.1, False, ["accuracy_drop"]),  # not significant, but more than allowed
        (-0.03, 0.001, 3.5, 0.1, False, ["non_regression", "accuracy_drop"]),
        (0.0, 1.0, 1.4, 0.1, False, ["size_ratio"]),
        (0.0, 1.0, 3.5, 0.5, False, ["latency_ratio"]),  # smaller but five times slower
    ],
)
def test_leaner_variant_replaces_the_float_model_only_when_the_figures_allow(
    delta: float, p_value: float, ratio: float, ms: float, replaces: bool, failed: list[str]
) -> None:
    from slipway.optimization.decision import decide_leaner

    decision = decide_leaner(
        GateConfig(min_accuracy=0.5),
        LeanerConfig(enabled=True, max_accuracy_drop=0.002, min_size_ratio=2.0),
        float_summary=_variant(0.9),
        leaner_summary=_variant(0.9 + delta, ms),
        comparison={"accuracy_delta": delta, "mcnemar_p_value": p_value},
        size_ratio=ratio,
    )
    assert decision["replaces_float"] is replaces
    assert [c["name"] for c in decision["checks"] if c["verdict"] == "fail"] == failed
