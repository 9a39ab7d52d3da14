"""Artifact store contract: the same cases run against a tmp ``file://`` store and ``s3://`` on moto.

Backend-specific cases (URL parsing, reserved names, multi-process safety of the file store,
S3 prefixes, multipart transfers) follow the shared ones.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from slipway.store import ArtifactNotFound, ArtifactStore, PreconditionFailed, StoreError, open_store
from slipway.store.local import LocalStore
from slipway.store.s3 import S3Store
from tests import fixtures_store as fx
from tests.fixtures_store import BUCKET, cas_increment, cas_worker, put_if_absent_worker, s3_url

# pytest fixtures shared with the registry tests, bound here so pytest finds them
moto_endpoint, moto_client, s3_env, store = fx.moto_endpoint, fx.moto_client, fx.s3_env, fx.store

THREADS = 8

# ---------------------------------------------------------------------------- shared contract


def test_put_get_exists_delete(store: ArtifactStore) -> None:
    assert not store.exists("runs/a/result.json")
    etag = store.put_bytes("runs/a/result.json", b"hello")
    assert store.exists("runs/a/result.json")
    assert store.get_bytes("runs/a/result.json") == b"hello"
    assert store.get_with_etag("runs/a/result.json") == (b"hello", etag)
    assert etag == hashlib.md5(b"hello").hexdigest()  # the same ETag on both backends

    store.put_bytes("runs/a/result.json", b"again")  # unconditional overwrite
    assert store.get_bytes("runs/a/result.json") == b"again"

    store.delete("runs/a/result.json")
    assert not store.exists("runs/a/result.json")
    store.delete("runs/a/result.json")  # deleting a missing key is a no-op, as on S3


def test_folder_is_not_a_key(store: ArtifactStore) -> None:
    store.put_bytes("a/b.txt", b"x")
    assert not store.exists("a")
    with pytest.raises(ArtifactNotFound):
        store.get_bytes("a")


def test_list_is_recursive_sorted_and_folder_like(store: ArtifactStore) -> None:
    for key in ["b/2", "a/x/1", "a/0", "ab/3", "a/x/y/z", "top"]:
        store.put_bytes(key, b".")
    assert list(store.list()) == ["a/0", "a/x/1", "a/x/y/z", "ab/3", "b/2", "top"]
    assert list(store.list("a")) == ["a/0", "a/x/1", "a/x/y/z"]  # not ab/3
    assert list(store.list("a/")) == ["a/0", "a/x/1", "a/x/y/z"]
    assert list(store.list("a/x")) == ["a/x/1", "a/x/y/z"]
    assert list(store.list("nothing")) == []


def test_json_helpers(store: ArtifactStore) -> None:
    value = {"b": [1, 2.5, None], "a": {"nested": "é"}}
    store.put_json("doc.json", value)
    assert store.get_json("doc.json") == value
    store.put_json_if_absent("new.json", [1])
    with pytest.raises(PreconditionFailed):
        store.put_json_if_absent("new.json", [2])
    assert store.get_json("new.json") == [1]


def test_upload_download_dir_and_copy_prefix(store: ArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "model"
    (src / "variables").mkdir(parents=True)
    (src / "saved_model.pb").write_bytes(b"graph")
    (src / "variables" / "variables.index").write_bytes(b"index")
    (src / "variables" / "variables.data-00000-of-00001").write_bytes(bytes(range(256)) * 10)

    keys = store.upload_dir(src, "runs/r1/train/model/")
    assert keys == [
        "runs/r1/train/model/saved_model.pb",
        "runs/r1/train/model/variables/variables.data-00000-of-00001",
        "runs/r1/train/model/variables/variables.index",
    ]

    copied = store.copy_prefix("runs/r1/train/model", "registry/m/1")
    assert copied == [k.replace("runs/r1/train/model", "registry/m/1") for k in keys]

    out = store.download_dir("registry/m/1", tmp_path / "out")
    for path in src.rglob("*"):
        if path.is_file():
            assert (out / path.relative_to(src)).read_bytes() == path.read_bytes()

    store.upload_file(src / "saved_model.pb", "single/file.pb")
    assert store.download_file("single/file.pb", tmp_path / "x" / "y.pb").read_bytes() == b"graph"


def test_put_if_absent_conflict_keeps_first(store: ArtifactStore) -> None:
    assert store.put_if_absent("claims/1.json", b"first") == hashlib.md5(b"first").hexdigest()
    with pytest.raises(PreconditionFailed, match=r"claims/1\.json"):
        store.put_if_absent("claims/1.json", b"second")
    assert store.get_bytes("claims/1.json") == b"first"


def test_compare_and_swap_success_then_stale_etag_fails(store: ArtifactStore) -> None:
    store.put_bytes("aliases.json", b"v1")
    _, etag1 = store.get_with_etag("aliases.json")
    etag2 = store.compare_and_swap("aliases.json", b"v2", etag1)
    assert store.get_with_etag("aliases.json") == (b"v2", etag2)

    with pytest.raises(PreconditionFailed, match=r"aliases\.json"):
        store.compare_and_swap("aliases.json", b"v3", etag1)  # etag1 is stale
    assert store.get_bytes("aliases.json") == b"v2"

    # ETags are handed out unquoted; a quoted one (as HTTP writes it) is accepted too
    store.compare_and_swap("aliases.json", b"v3", f'"{etag2}"')
    assert store.get_bytes("aliases.json") == b"v3"


def test_compare_and_swap_absent_semantics(store: ArtifactStore) -> None:
    store.compare_and_swap("state.json", b"created", None)  # None: only if absent
    assert store.get_bytes("state.json") == b"created"
    with pytest.raises(PreconditionFailed):
        store.compare_and_swap("state.json", b"again", None)

    _, etag = store.get_with_etag("state.json")
    store.delete("state.json")
    with pytest.raises(PreconditionFailed):  # it existed when read, not any more: lost race
        store.compare_and_swap("state.json", b"resurrected", etag)
    assert not store.exists("state.json")


def test_missing_keys_raise_artifact_not_found_naming_the_uri(store: ArtifactStore, tmp_path: Path) -> None:
    uri = store.uri("runs/none/result.json")
    assert uri.endswith("runs/none/result.json")
    calls = [
        lambda: store.get_bytes("runs/none/result.json"),
        lambda: store.get_with_etag("runs/none/result.json"),
        lambda: store.get_json("runs/none/result.json"),
        lambda: store.download_file("runs/none/result.json", tmp_path / "f"),
        lambda: store.copy("runs/none/result.json", "elsewhere"),
    ]
    for call in calls:
        with pytest.raises(ArtifactNotFound) as info:
            call()
        assert uri in str(info.value)
        assert isinstance(info.value, KeyError)  # callers may catch KeyError
    with pytest.raises(ArtifactNotFound, match="runs/none"):
        store.download_dir("runs/none", tmp_path / "d")


BAD_KEYS = ["../escape", "/etc/passwd", "a/../../b", "a//b", "a/./b", "", "a\\b", "nul\x00"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_keys_that_escape_the_root_are_rejected(store: ArtifactStore, key: str) -> None:
    for call in [
        lambda: store.put_bytes(key, b"x"),
        lambda: store.put_if_absent(key, b"x"),
        lambda: store.compare_and_swap(key, b"x", None),
        lambda: store.get_bytes(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
    ]:
        with pytest.raises(StoreError, match="invalid store key") as info:
            call()
        assert not isinstance(info.value, ArtifactNotFound)
        assert repr(key) in str(info.value)
    with pytest.raises(StoreError, match="invalid store key"):
        list(store.list("../up"))
    assert list(store.list()) == []


def test_threads_put_if_absent_exactly_one_wins(store: ArtifactStore) -> None:
    barrier = threading.Barrier(THREADS)

    def attempt(i: int) -> bool:
        barrier.wait()
        try:
            store.put_if_absent("race/winner", f"writer-{i}".encode())
            return True
        except PreconditionFailed:
            return False

    with ThreadPoolExecutor(THREADS) as pool:
        won = list(pool.map(attempt, range(THREADS)))
    assert won.count(True) == 1
    assert store.get_bytes("race/winner") == f"writer-{won.index(True)}".encode()


def test_threads_cas_counter_is_exact(store: ArtifactStore) -> None:
    per_thread = 4
    barrier = threading.Barrier(THREADS)

    def work(_: int) -> int:
        barrier.wait()
        return sum(cas_increment(store, "race/counter") for _ in range(per_thread))

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(work, range(THREADS)))
    assert int(store.get_bytes("race/counter")) == THREADS * per_thread


# ---------------------------------------------------------------------------- factory and URLs


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("gs://bucket/x", "unsupported store URL 'gs://bucket/x'"),
        ("/tmp/no-scheme", "invalid store URL"),
        ("file://relative/path", "file:///absolute/path"),
        ("file:///", "must be absolute and not '/'"),
        ("s3://", "expected s3://bucket"),
        ("s3://Bad_Bucket/x", "not a valid bucket name"),
        ("s3://bucket/a/../b", "invalid store key"),
    ],
)
def test_bad_urls_name_the_problem(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message.replace(".", r"\.").replace("/", "/")):
        open_store(url)


def test_factory_picks_backend_by_scheme(tmp_path: Path, s3_env: str) -> None:
    local = open_store(tmp_path.as_uri() + "/s")
    assert isinstance(local, LocalStore)
    assert local.url == (tmp_path / "s").as_uri()
    remote = open_store(f"s3://{BUCKET}/some/prefix/")
    assert isinstance(remote, S3Store)
    assert remote.url == f"s3://{BUCKET}/some/prefix"
    assert remote.uri("k/v.json") == f"s3://{BUCKET}/some/prefix/k/v.json"


# ---------------------------------------------------------------------------- file store specifics


def test_file_store_hides_temp_and_lock_files_and_reserves_their_names(tmp_path: Path) -> None:
    store = open_store(tmp_path.as_uri())
    store.put_bytes("a", b"1")
    store.compare_and_swap("a", b"2", store.get_with_etag("a")[1])
    assert (tmp_path / ".locks").is_dir() and (tmp_path / ".tmp").is_dir()
    assert list(store.list()) == ["a"]
    assert list((tmp_path / ".tmp").iterdir()) == []  # no temp file left behind
    for key in [".tmp/x", ".locks/000.lock"]:
        with pytest.raises(StoreError, match="reserved"):
            store.put_bytes(key, b"x")
        with pytest.raises(StoreError, match="reserved"):
            list(store.list(key.split("/")[0]))


def test_file_store_key_under_a_file_is_a_clear_error(tmp_path: Path) -> None:
    store = open_store(tmp_path.as_uri())
    store.put_bytes("a", b"file")
    with pytest.raises(StoreError, match="cannot write"):
        store.put_bytes("a/b", b"x")
    with pytest.raises(StoreError, match="cannot write") as info:
        store.put_if_absent("a/b", b"x")
    assert not isinstance(info.value, PreconditionFailed)


def _run_processes(target, args_for, n: int) -> list:  # type: ignore[no-untyped-def]
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args_for(i), barrier, results)) for i in range(n)]
    for proc in procs:
        proc.start()
    out = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    return out


def test_file_store_put_if_absent_across_processes(tmp_path: Path) -> None:
    url = tmp_path.as_uri()
    results = _run_processes(put_if_absent_worker, lambda i: (url, "race/winner", i), 4)
    winners = [ident for ident, won in results if won]
    assert len(winners) == 1
    assert open_store(url).get_bytes("race/winner") == f"writer-{winners[0]}".encode()


def test_file_store_cas_counter_across_processes(tmp_path: Path) -> None:
    url = tmp_path.as_uri()
    _run_processes(cas_worker, lambda i: (url, "race/counter", 10), 4)
    assert int(open_store(url).get_bytes("race/counter")) == 40


# ---------------------------------------------------------------------------- S3 specifics


def test_s3_prefixes_isolate_stores(s3_env: str) -> None:
    one, two = open_store(s3_url()), open_store(s3_url())
    one.put_bytes("k", b"1")
    assert not two.exists("k")
    assert list(two.list()) == []
    assert list(one.list()) == ["k"]


def test_s3_missing_bucket_is_a_store_error_naming_bucket(s3_env: str) -> None:
    store = open_store("s3://no-such-bucket-here/x")
    with pytest.raises(StoreError, match="no-such-bucket-here") as info:
        store.put_bytes("k", b"1")
    assert "NoSuchBucket" in str(info.value)
    assert not isinstance(info.value, ArtifactNotFound)


def test_s3_big_files_use_multipart_transfers(
    s3_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from boto3.s3.transfer import TransferConfig

    from slipway.store import s3

    mib = 1024 * 1024
    config = TransferConfig(multipart_threshold=5 * mib, multipart_chunksize=5 * mib)
    monkeypatch.setattr(s3, "_TRANSFER", config)
    monkeypatch.setattr(s3, "_MAX_COPY_OBJECT", 1)  # force the managed (multipart) copy path
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (24 * 1024 + 7))  # just over 6 MiB: two parts
    store = open_store(s3_url())
    etag = store.upload_file(big, "big/file.bin")
    assert etag.endswith("-2")  # a multipart ETag
    assert store.copy_prefix("big", "copy") == ["copy/file.bin"]
    assert store.download_file("copy/file.bin", tmp_path / "back.bin").read_bytes() == big.read_bytes()

    # copy() of one key tries CopyObject first; S3 answers InvalidRequest above 5 GiB
    from botocore.exceptions import ClientError

    def too_big(**kwargs: object) -> None:
        raise ClientError({"Error": {"Code": "InvalidRequest", "Message": "larger than 5 GiB"}}, "CopyObject")

    monkeypatch.setattr(store.client, "copy_object", too_big)
    assert store.copy("big/file.bin", "copy/again.bin").endswith("-2")  # the managed multipart copy
    assert store.get_bytes("copy/again.bin") == big.read_bytes()
