"""Config resolved the same way wherever it is loaded, and every config problem found at parse
time (the DAG file, the operator), not in a pod after retries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from slipway.config import ConfigError, load_config, parse_config


def _raw(**extra: Any) -> dict[str, Any]:
    return {
        "name": "d",
        "model_name": "d",
        "store_url": "file:///tmp/store",
        "data": {"source": {"kind": "digits"}, "input_shape": [8, 8], "num_classes": 10},
        **extra,
    }


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def test_defaults_are_expanded_without_a_base_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLIPWAY_METRICS_DIR", raising=False)
    config = parse_config(_raw())  # no base folder: a config passed by value, as to a pod
    assert config.metrics.textfile_dir == ".slipway/metrics"
    assert not [s for s in _strings(config.model_dump(mode="json")) if "${" in s]
    monkeypatch.setenv("SLIPWAY_METRICS_DIR", "/var/lib/node_exporter")
    assert parse_config(_raw()).metrics.textfile_dir == "/var/lib/node_exporter"


def test_file_and_memory_agree_on_the_metrics_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPWAY_METRICS_DIR", "/srv/metrics")
    path = tmp_path / "d.yaml"
    path.write_text(
        "name: d\nmodel_name: d\nstore_url: file:///tmp/s\ndata: {source: {kind: digits}, input_shape: [8, 8], num_classes: 10}\n"
    )
    assert (
        load_config(path).metrics.textfile_dir == parse_config(_raw()).metrics.textfile_dir == "/srv/metrics"
    )


def test_overrides_keep_the_expanded_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPWAY_METRICS_DIR", "/srv/metrics")
    config = parse_config(_raw()).with_overrides({"training": {"epochs": 2}})
    assert config.metrics.textfile_dir == "/srv/metrics" and config.training.epochs == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"store_url": "s3://"},
            "store_url: Value error, store_url 's3://' names no location: it needs a bucket",
        ),
        ({"store_url": "file://"}, "names no location: it needs a folder"),
        (
            {"training": {"layers": [{"type": "dense", "units": 8, "activation": "relux"}]}},
            "training.layers.0.dense.activation: Input should be 'relu'",
        ),
        ({"metrics": {"textfile_dir": "${SLIPWAY_NOT_SET_ANYWHERE}"}}, "SLIPWAY_NOT_SET_ANYWHERE is not set"),
    ],
)
def test_config_problems_fail_at_parse_time(extra: dict[str, Any], message: str, monkeypatch) -> None:
    monkeypatch.delenv("SLIPWAY_NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(ConfigError) as info:
        parse_config(_raw(**extra))
    assert message in str(info.value)
