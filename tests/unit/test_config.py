"""Pipeline config: defaults, env expansion, path resolution, and errors that name file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from slipway.config import ConfigError, load_config, load_pipelines, parse_config

REPO = Path(__file__).resolve().parents[2]

MINIMAL = """
name: demo
model_name: demo-model
store_url: file://store
data:
  source: {kind: digits}
  input_shape: [8, 8]
  num_classes: 10
"""


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_pipelines_load() -> None:
    configs = load_pipelines(REPO / "dags" / "pipelines")
    assert [c.name for c in configs] == ["fashion_mnist"]
    fashion = configs[0]
    # The model of record: Dense 512 relu, Dropout 0.2, Adam 1e-3, batch 128, 10 epochs.
    assert [layer.type for layer in fashion.training.layers] == ["flatten", "dense", "dropout"]
    assert fashion.training.layers[1].units == 512
    assert fashion.training.optimizer.learning_rate == pytest.approx(1e-3)
    assert (fashion.training.batch_size, fashion.training.epochs) == (128, 10)


def test_defaults_and_relative_store(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.store_url == f"file://{tmp_path / 'store'}"
    assert cfg.training.epochs == 10
    assert cfg.launcher.kind == "local"
    assert cfg.source_path == str(tmp_path / "p.yaml")


def test_env_expansion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = MINIMAL.replace("file://store", "${MY_STORE:-file:///default}")
    assert load_config(write(tmp_path, text)).store_url == "file:///default"
    monkeypatch.setenv("MY_STORE", "s3://bucket/prefix")
    assert load_config(write(tmp_path, text)).store_url == "s3://bucket/prefix"


def test_missing_env_without_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_NOT_SET", raising=False)
    with pytest.raises(ConfigError, match="NOPE_NOT_SET"):
        load_config(write(tmp_path, MINIMAL.replace("file://store", "${NOPE_NOT_SET}")))


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (("  num_classes: 10", "  num_classes: 1"), "data.num_classes", "greater than or equal to 2"),
        (
            ("model_name: demo-model", "model_name: demo-model\ntraining: {epochs: 0}"),
            "training.epochs",
            "greater than 0",
        ),
        (
            ("model_name: demo-model", "model_name: demo-model\ntraining: {epoch: 3}"),
            "training.epoch",
            "unknown field",
        ),
        (("store_url: file://store", "store_url: http://x"), "store_url", "file:// or s3://"),
        (("kind: digits", "kind: csv"), "data.source.kind", "Input should be"),
        (("kind: digits", "kind: idx"), "data.source", "needs a 'uri'"),
        (
            ("model_name: demo-model", "model_name: demo-model\ntraining: {layers: [{type: dense}]}"),
            "training.layers.0.dense.units",
            "Field required",
        ),
    ],
)
def test_errors_name_file_field_and_problem(
    tmp_path: Path, change: tuple[str, str], field: str, problem: str
) -> None:
    path = write(tmp_path, MINIMAL.replace(*change))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert field in message
    assert problem in message


def test_yaml_syntax_error_names_file(tmp_path: Path) -> None:
    path = write(tmp_path, "name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"invalid YAML in pipeline config .*p\.yaml"):
        load_config(path)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read pipeline config"):
        load_config("/nonexistent/pipeline.yaml")


def test_overrides_are_validated(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.with_overrides({"training": {"epochs": 3}}).training.epochs == 3
    assert (
        cfg.with_overrides({"training": {"optimizer": {"learning_rate": 0.01}}}).training.optimizer.name
        == "adam"
    )
    with pytest.raises(ConfigError, match=r"training\.batch_size"):
        cfg.with_overrides({"training": {"batch_size": -1}})


def test_fingerprint_tracks_training_settings(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.fingerprint() == cfg.with_overrides({"gate": {"min_accuracy": 0.5}}).fingerprint()
    assert cfg.fingerprint() != cfg.with_overrides({"training": {"epochs": 2}}).fingerprint()


def test_duplicate_pipeline_names(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL, "a.yaml")
    write(tmp_path, MINIMAL, "b.yaml")
    with pytest.raises(ConfigError, match="'demo' is used by both"):
        load_pipelines(tmp_path)


def test_top_level_must_be_mapping() -> None:
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        parse_config(["not", "a", "mapping"], "x.yaml")
