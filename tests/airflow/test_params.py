"""``operators/params.py``: the trigger form's schema, its mapping to config overrides, and the
checks a per-field schema cannot make."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from airflow.sdk import ParamsDict
from airflow.sdk.exceptions import ParamValidationError

from operators.params import (
    PARAM_PATHS,
    event_partition,
    overrides_from_params,
    param_defaults,
    params_form,
    run_request_problems,
)
from slipway.config import parse_config

CONFIG = parse_config(
    {
        "name": "digits",
        "model_name": "digits",
        "store_url": "file:///tmp/slipway-params-test",
        "data": {"source": {"kind": "digits"}, "input_shape": [8, 8], "num_classes": 10},
        "training": {"epochs": 7, "batch_size": 32, "optimizer": {"learning_rate": 0.01}},
    }
)


def validated(**values):
    params = ParamsDict(params_form(CONFIG))
    for name, value in values.items():
        params[name] = value
    return params.validate()


def test_defaults_are_the_pipelines_settings() -> None:
    assert param_defaults(CONFIG) == {"epochs": 7, "batch_size": 32, "learning_rate": 0.01}
    values = validated()
    assert values == {
        "partition": None,
        "epochs": 7,
        "batch_size": 32,
        "learning_rate": 0.01,
        "force_deploy": False,
        "force_reason": None,
        "skip_canary": False,
        "skip_canary_reason": None,
    }
    # An untouched form overrides nothing the config does not already say.
    assert CONFIG.with_overrides(overrides_from_params(values)) == CONFIG


def test_every_knob_is_typed_described_and_in_a_section() -> None:
    sections = {}
    for name, param in params_form(CONFIG).items():
        schema = param.schema
        assert schema.get("type"), name
        assert schema.get("title") and param.description, name
        sections.setdefault(schema["section"], []).append(name)
    assert sections == {
        "Data": ["partition"],
        "Training": ["epochs", "batch_size", "learning_rate"],
        "Deployment": ["force_deploy", "force_reason"],
        "Canary rollout": ["skip_canary", "skip_canary_reason"],
    }


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("epochs", 0, "less than the minimum of 1"),
        ("epochs", 2.5, "is not of type 'integer'"),
        ("epochs", "ten", "is not of type 'integer'"),
        ("batch_size", -1, "less than the minimum"),
        ("learning_rate", 0, "less than or equal to the minimum"),
        ("learning_rate", 3, "greater than the maximum"),
        ("partition", "../../etc", "does not match"),
        ("partition", "/abs", "does not match"),
        ("force_deploy", "yes", "is not of type 'boolean'"),
        ("force_reason", "x" * 501, "is too long"),
    ],
)
def test_invalid_value_is_refused_naming_the_field(name: str, value, words: str) -> None:
    with pytest.raises(ParamValidationError) as caught:
        validated(**{name: value})
    assert f"Invalid input for param {name}:" in str(caught.value)
    assert words in str(caught.value)


@pytest.mark.parametrize("partition", ["good", "2026-05-01", "dt=2026-05-01/part_1.npz", None])
def test_partition_names_accepted(partition) -> None:
    assert validated(partition=partition)["partition"] == partition


def test_overrides_follow_param_paths_and_skip_empty_values() -> None:
    overrides = overrides_from_params({"epochs": 3, "batch_size": "", "learning_rate": 0.5, "partition": "p"})
    assert overrides == {"training": {"epochs": 3, "optimizer": {"learning_rate": 0.5}}}
    config = CONFIG.with_overrides(overrides)
    assert config.training.epochs == 3 and config.training.optimizer.learning_rate == 0.5
    assert config.training.batch_size == 32
    assert set(PARAM_PATHS) <= set(params_form(CONFIG))


def test_run_request_problems() -> None:
    known = params_form(CONFIG).keys()
    fine = validated(epochs=2)
    assert run_request_problems(fine, {"epochs": 2}, known) == []
    (typo,) = run_request_problems(fine, {"epoch": 2}, known)
    assert "unknown conf field(s) epoch" in typo and "epochs" in typo
    (force,) = run_request_problems(validated(force_deploy=True, force_reason="  "), None, known)
    assert "force_reason is empty" in force
    assert run_request_problems(validated(force_deploy=True, force_reason="incident 42"), None, known) == []
    (bad_partition,) = run_request_problems(fine, None, known, partition="../secrets")
    assert "'../secrets' is not a partition name" in bad_partition


def _event(minutes: int, **extra):
    return SimpleNamespace(
        extra=extra,
        partition_key=None,
        timestamp=datetime(2026, 5, 1, tzinfo=UTC) + timedelta(minutes=minutes),
    )


def test_event_partition_is_the_newest_event_that_names_one() -> None:
    assert event_partition(None) == "" and event_partition({}) == ""
    events = {
        "asset": [_event(1, partition="older"), _event(3, from_rest_api=True), _event(2, partition="newer")]
    }
    assert event_partition(events) == "newer"
    keyed = SimpleNamespace(extra={}, partition_key="2026-05-02", timestamp=datetime(2026, 5, 2, tzinfo=UTC))
    assert event_partition({"asset": [keyed]}) == "2026-05-02"
    assert event_partition({"asset": [_event(1, from_rest_api=True)]}) == ""
