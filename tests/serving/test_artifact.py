"""Checksums recorded at registration; a tampered, partial or unverifiable model is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from slipway import cli
from slipway.errors import EXIT_BAD_INPUT
from slipway.registry import ModelRegistry, file_digest
from slipway.serving.artifact import ModelRefused, fetch_verified
from slipway.store import ArtifactStore, open_store
from tests import fixtures_store as fx
from tests.fixtures_store import MODEL_FILES, write_model

moto_endpoint, moto_client, s3_env, store = fx.moto_endpoint, fx.moto_client, fx.s3_env, fx.store


def _registered(store: ArtifactStore, run: str = "r1") -> ModelRegistry:
    registry = ModelRegistry(store, "fashion")
    version = registry.register(write_model(store, f"runs/{run}/train/model", tag=run), {}, run_id=run)
    registry.set_alias("champion", version.number, actor="t", run_id=run, reason="test")
    return registry


def test_registration_records_every_files_sha256(store: ArtifactStore, tmp_path: Path) -> None:
    registry = _registered(store)
    version = registry.get_version(1)
    assert version.checksums == {rel: file_digest(data + b"r1") for rel, data in MODEL_FILES.items()}
    local = fetch_verified(store, "fashion", "champion", tmp_path / "cache")
    assert (local.version, local.labels) == (1, ("champion",))
    assert (local.path / "saved_model.pb").read_bytes() == b"graphr1"
    assert fetch_verified(store, "fashion", "1", tmp_path / "cache").path == local.path  # cached, re-verified


def test_tampered_partial_or_padded_copies_are_refused(store: ArtifactStore, tmp_path: Path) -> None:
    registry = _registered(store)
    prefix = registry.model_prefix(1)
    store.put_bytes(f"{prefix}/variables/variables.data-00000-of-00001", b"poisoned weights")
    with pytest.raises(ModelRefused, match=r"checksum mismatch in \['variables/variables.data"):
        fetch_verified(store, "fashion", "champion", tmp_path / "a")
    store.put_bytes(
        f"{prefix}/variables/variables.data-00000-of-00001",
        MODEL_FILES["variables/variables.data-00000-of-00001"] + b"r1",
    )
    store.delete(f"{prefix}/saved_model.pb")
    with pytest.raises(ModelRefused, match=r"missing \['saved_model.pb'\]"):
        fetch_verified(store, "fashion", "champion", tmp_path / "b")
    store.put_bytes(f"{prefix}/saved_model.pb", b"graphr1")
    store.put_bytes(f"{prefix}/extra.py", b"import os")
    with pytest.raises(ModelRefused, match=r"unexpected files \['extra.py'\]"):
        fetch_verified(store, "fashion", "champion", tmp_path / "c")
    assert not any((tmp_path / name / "fashion" / "1").exists() for name in "abc")  # nothing half-cached


def test_a_changed_cached_copy_is_refused(tmp_path: Path) -> None:
    store = open_store((tmp_path / "store").as_uri())
    _registered(store)
    local = fetch_verified(store, "fashion", "champion", tmp_path / "cache")
    (local.path / "fingerprint.pb").write_bytes(b"changed")
    with pytest.raises(ModelRefused, match=r"cached copy .*checksum mismatch in \['fingerprint.pb'\]"):
        fetch_verified(store, "fashion", "champion", tmp_path / "cache")


def test_serve_refuses_before_starting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = open_store((tmp_path / "store").as_uri())
    registry = _registered(store)
    store.put_bytes(f"{registry.model_prefix(1)}/saved_model.pb", b"truncated")
    base = ["serve", "--store-url", store.uri(""), "--model", "fashion"]
    cases = [
        (["--version", "champion"], "checksum mismatch in ['saved_model.pb']"),
        (["--version", "7"], "has no version 7"),
        (["--version", "canary"], "has no alias 'canary'"),
        (["--version", "1", "--fault-rate", "2"], "--fault-rate must be between 0 and 1"),
        (["--version", "1", "--max-batch-size", "0"], "max_batch_size"),
    ]
    for extra, words in cases:
        assert cli.main([*base, *extra]) == EXIT_BAD_INPUT
        assert words in capsys.readouterr().err


def test_versions_registered_without_checksums_are_not_served(tmp_path: Path) -> None:
    store = open_store((tmp_path / "store").as_uri())
    registry = _registered(store)
    key = "registry/fashion/_registry/versions/1.json"
    record = store.get_json(key)
    del record["checksums"]  # as written before checksums were recorded
    store.put_json(key, record)
    assert registry.get_version(1).checksums == {}
    with pytest.raises(ModelRefused, match="registered without checksums"):
        fetch_verified(store, "fashion", "1", tmp_path / "cache")
