"""Model registry: versions, idempotent registration, aliases with history, attachments, concurrency.

Most cases run on both a tmp ``file://`` store and ``s3://`` on a moto server; the multi-process
case uses the file store (S3 needs no help across processes: the server serializes).
"""

from __future__ import annotations

import multiprocessing
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest

from slipway.registry import (
    AliasConflict,
    AliasMove,
    AttachmentExists,
    ModelRegistry,
    RegistryError,
    VersionNotFound,
)
from slipway.store import ArtifactStore, PreconditionFailed, open_store
from tests import fixtures_store as fx
from tests.fixtures_store import MODEL_FILES, register_worker, write_model

# pytest fixtures shared with the store tests, bound here so pytest finds them
moto_endpoint, moto_client, s3_env, store = fx.moto_endpoint, fx.moto_client, fx.s3_env, fx.store

MODEL = "fashion"
WHO = {"actor": "tester", "run_id": "run-x", "reason": "test"}


@pytest.fixture
def registry(store: ArtifactStore) -> ModelRegistry:
    return ModelRegistry(store, MODEL)


def _register(registry: ModelRegistry, run: str, **metadata: object) -> int:
    source = write_model(registry.store, f"runs/{run}/train/model", tag=run)
    return registry.register(source, dict(metadata), run_id=run).number


# ---------------------------------------------------------------------------- versions


def test_versions_are_sequential_and_tf_serving_laid_out(registry: ModelRegistry) -> None:
    assert registry.versions() == [] and registry.latest_version() is None
    assert [_register(registry, f"r{i}", accuracy=0.9 + i / 100) for i in (1, 2, 3)] == [1, 2, 3]
    assert registry.versions() == [1, 2, 3] and registry.latest_version() == 3

    v2 = registry.get_version(2)
    assert (v2.model, v2.number, v2.run_id, v2.actor) == (MODEL, 2, "r2", "slipway")
    assert v2.prefix == registry.model_prefix(2) == "registry/fashion/2"
    assert v2.uri == registry.store.uri("registry/fashion/2")
    assert v2.source_prefix == "runs/r2/train/model"
    assert v2.metadata == {"accuracy": 0.92}
    assert datetime.fromisoformat(v2.created_at).tzinfo is not None
    assert set(v2.files) == set(MODEL_FILES)

    # TF Serving serves registry/<model>: numeric folders hold the files, bookkeeping is apart
    store = registry.store
    assert registry.base_uri == store.uri("registry/fashion")
    assert store.get_bytes("registry/fashion/2/saved_model.pb") == b"graphr2"
    top = {key.split("/")[2] for key in store.list("registry/fashion")}
    assert top == {"1", "2", "3", "_registry"}


def test_register_is_idempotent_per_run_and_source(registry: ModelRegistry) -> None:
    source = write_model(registry.store, "runs/a/train/model")
    first = registry.register(source, {"n": 1}, run_id="run-a")
    again = registry.register(source + "/", {"n": 1}, run_id="run-a")  # an Airflow retry
    assert again == first
    assert registry.versions() == [1]
    assert registry.register(source, {}, run_id="run-b").number == 2  # another run: new version
    other = write_model(registry.store, "runs/a/train/other")
    assert registry.register(other, {}, run_id="run-a").number == 3  # same run, other model


def test_register_retry_finishes_an_interrupted_copy_graph_last(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = registry.store
    source = write_model(store, "runs/a/train/model")
    real_copy = store.copy
    copied: list[str] = []  # file names, in copy order

    def dying_copy(src: str, dst: str) -> str:
        if len(copied) == 3:
            raise ConnectionError("pod evicted")
        copied.append(dst.rsplit("/", 1)[-1])
        return real_copy(src, dst)

    monkeypatch.setattr(store, "copy", dying_copy)
    with pytest.raises(ConnectionError):
        registry.register(source, {}, run_id="run-a")
    assert registry.versions() == [1]  # claimed, not complete
    with pytest.raises(RegistryError, match=r"version 1 is incomplete .* re-run register for run 'run-a'"):
        registry.set_alias("candidate", 1, **WHO)

    def counting_copy(src: str, dst: str) -> str:
        copied.append(dst.rsplit("/", 1)[-1])
        return real_copy(src, dst)

    monkeypatch.setattr(store, "copy", counting_copy)
    assert registry.register(source, {}, run_id="run-a").number == 1
    # across both attempts every file was copied exactly once, and the graph last
    assert sorted(copied) == sorted(name.rsplit("/", 1)[-1] for name in MODEL_FILES)
    assert copied[-1] == "saved_model.pb"
    for rel, data in MODEL_FILES.items():
        assert store.get_bytes(f"registry/fashion/1/{rel}") == data
    registry.set_alias("candidate", 1, **WHO)


def test_register_finds_a_version_whose_index_entry_was_never_written(registry: ModelRegistry) -> None:
    store = registry.store
    _register(registry, "r1")
    source = write_model(store, "runs/r2/train/model")
    version = registry.register(source, {}, run_id="r2")
    (index_key,) = [k for k in store.list("registry/fashion/_registry/runs") if k.endswith("/2.json")]
    store.delete(index_key)  # as if the first attempt died right after claiming the number
    assert registry.register(source, {}, run_id="r2") == version
    assert store.exists(index_key)  # repaired
    assert registry.versions() == [1, 2]


def test_register_without_files_claims_nothing(registry: ModelRegistry) -> None:
    with pytest.raises(RegistryError, match=r"model 'fashion': no model files under .*runs/empty"):
        registry.register("runs/empty/train/model", {}, run_id="r")
    assert registry.versions() == []


def test_missing_and_invalid_versions(registry: ModelRegistry) -> None:
    _register(registry, "r1")
    with pytest.raises(VersionNotFound, match=r"model 'fashion' has no version 7 \(versions 1\.\.1\)"):
        registry.get_version(7)
    for bad in (0, -1, "1", True, 1.0):
        with pytest.raises(RegistryError, match="invalid model version"):
            registry.get_version(bad)  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match="invalid model name"):
        ModelRegistry(registry.store, "../etc")


# ---------------------------------------------------------------------------- aliases


def test_alias_moves_are_recorded_with_who_when_run_and_why(registry: ModelRegistry) -> None:
    for run in ("r1", "r2"):
        _register(registry, run)
    assert registry.aliases() == {} and registry.get_alias("champion") is None

    registry.set_alias("candidate", 1, actor="airflow", run_id="r1", reason="registered")
    first = registry.set_alias(
        "champion", 1, actor="airflow", run_id="r1", reason="first model", expected=None
    )
    move = registry.set_alias("champion", 2, actor="alice", run_id="r2", reason="gate passed", expected=1)

    assert registry.aliases() == {"candidate": 1, "champion": 2}
    assert registry.get_alias("champion") == 2
    assert isinstance(move, AliasMove)
    assert (move.alias, move.from_version, move.to_version) == ("champion", 1, 2)
    assert (move.actor, move.run_id, move.reason, move.model) == ("alice", "r2", "gate passed", MODEL)
    assert datetime.fromisoformat(move.at) >= datetime.fromisoformat(first.at)

    champion = registry.history("champion")
    assert [(h["from_version"], h["to_version"], h["actor"], h["reason"]) for h in champion] == [
        (None, 1, "airflow", "first model"),
        (1, 2, "alice", "gate passed"),
    ]
    assert [h["alias"] for h in registry.history()] == ["candidate", "champion", "champion"]
    assert [h["seq"] for h in registry.history()] == [1, 2, 3]


def _state(registry: ModelRegistry) -> tuple[dict[str, int], list[dict[str, object]]]:
    return registry.aliases(), registry.history()


def test_stale_expected_raises_alias_conflict_and_changes_nothing(registry: ModelRegistry) -> None:
    for run in ("r1", "r2", "r3"):
        _register(registry, run)
    registry.set_alias("champion", 2, **WHO)
    before = _state(registry)
    with pytest.raises(AliasConflict, match=r"model 'fashion' alias 'champion' points to version 2, not 1"):
        registry.set_alias("champion", 3, **WHO, expected=1)
    with pytest.raises(AliasConflict, match="not None"):
        registry.set_alias("champion", 3, **WHO, expected=None)
    assert _state(registry) == before


def test_alias_to_unknown_version_is_rejected_and_changes_nothing(registry: ModelRegistry) -> None:
    _register(registry, "r1")
    registry.set_alias("champion", 1, **WHO)
    before = _state(registry)
    with pytest.raises(RegistryError, match=r"model 'fashion' has no version 5"):
        registry.set_alias("champion", 5, **WHO)
    for bad in ("Champion", "1st", "", "has space", "a/b"):
        with pytest.raises(RegistryError, match="invalid alias"):
            registry.set_alias(bad, 1, **WHO)
    assert _state(registry) == before


def test_set_alias_again_is_a_no_op_and_a_lost_history_record_is_repaired(registry: ModelRegistry) -> None:
    for run in ("r1", "r2"):
        _register(registry, run)
    first = registry.set_alias("champion", 1, **WHO)
    # a retried promote whose first attempt got through: same answer, nothing new written
    assert registry.set_alias("champion", 1, **WHO, expected=None) == first
    assert len(registry.history()) == 1

    # the alias moved but the writer died before recording it
    store = registry.store
    store.put_bytes("registry/fashion/_registry/aliases.json", b'{"champion": 2}')
    move = registry.set_alias("champion", 2, actor="promote", run_id="r2", reason="retry", expected=1)
    assert (move.from_version, move.to_version, move.seq) == (1, 2, 2)
    assert len(registry.history("champion")) == 2


# ---------------------------------------------------------------------------- attachments


def test_attachments_are_immutable(registry: ModelRegistry) -> None:
    _register(registry, "r1")
    key = registry.attach(1, "blessing.json", b'{"blessed": true}')
    assert key == "registry/fashion/_registry/attachments/1/blessing.json"
    assert registry.attachment_uri(1, "blessing.json") == registry.store.uri(key)
    assert registry.read_attachment(1, "blessing.json") == b'{"blessed": true}'
    assert registry.attach(1, "blessing.json", b'{"blessed": true}') == key  # retry: same bytes
    with pytest.raises(AttachmentExists, match=r"version 1 already has attachment 'blessing\.json'") as info:
        registry.attach(1, "blessing.json", b'{"blessed": false}')
    assert isinstance(
        info.value, PreconditionFailed
    )  # a lost create-only write, for callers keeping the first
    assert registry.read_attachment(1, "blessing.json") == b'{"blessed": true}'

    registry.attach(1, "reports/evaluate.html", b"<html/>")
    with pytest.raises(RegistryError, match=r"version 1 has no attachment 'nope'"):
        registry.read_attachment(1, "nope")
    with pytest.raises(VersionNotFound):
        registry.attach(9, "blessing.json", b"{}")


# ---------------------------------------------------------------------------- concurrency


def test_threads_registering_at_once_get_distinct_numbers(registry: ModelRegistry) -> None:
    n = 8
    sources = [write_model(registry.store, f"runs/r{i}/train/model", tag=str(i)) for i in range(n)]
    barrier = threading.Barrier(n)

    def work(i: int) -> int:
        barrier.wait()
        return registry.register(sources[i], {"i": i}, run_id=f"r{i}").number

    with ThreadPoolExecutor(n) as pool:
        numbers = list(pool.map(work, range(n)))
    assert sorted(numbers) == list(range(1, n + 1))
    for i, number in enumerate(numbers):
        version = registry.get_version(number)
        assert version.run_id == f"r{i}" and version.metadata == {"i": i}
        assert registry.store.get_bytes(f"{version.prefix}/saved_model.pb") == f"graph{i}".encode()


def test_threads_promoting_from_the_same_view_exactly_one_wins(registry: ModelRegistry) -> None:
    n = 8
    for i in range(n + 1):
        _register(registry, f"r{i}")
    registry.set_alias("champion", 1, **WHO)
    barrier = threading.Barrier(n)

    def promote(i: int) -> bool:
        barrier.wait()
        try:
            registry.set_alias("champion", i + 2, actor=f"t{i}", run_id=f"r{i}", reason="race", expected=1)
            return True
        except AliasConflict:
            return False

    with ThreadPoolExecutor(n) as pool:
        won = list(pool.map(promote, range(n)))
    assert won.count(True) == 1
    assert registry.get_alias("champion") == won.index(True) + 2
    assert len(registry.history("champion")) == 2


def test_processes_registering_at_once_get_distinct_numbers(tmp_path: Path) -> None:
    url = tmp_path.as_uri()
    store = open_store(url)
    procs, per_proc = 4, 2
    for i in range(procs * per_proc):
        write_model(store, f"runs/r{i}/train/model", tag=str(i))

    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(procs), ctx.Queue()
    workers = [
        ctx.Process(
            target=register_worker,
            args=(url, MODEL, [p * per_proc + j for j in range(per_proc)], barrier, results),
        )
        for p in range(procs)
    ]
    for worker in workers:
        worker.start()
    got = dict(results.get(timeout=120) for _ in range(procs * per_proc))
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert sorted(got.values()) == list(range(1, procs * per_proc + 1))
    registry = ModelRegistry(store, MODEL)
    for ident, number in got.items():
        assert registry.get_version(number).run_id == f"run-{ident}"
    assert not [k for k in store.list() if re.search(r"\.tmp|\.lock", k)]
