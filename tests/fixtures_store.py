"""Store fixtures shared by the store and registry tests: one tmp ``file://`` store, one ``s3://``
store on a real moto S3 protocol server, and process workers for the multi-process tests.

Import the fixtures into a test module (``from tests.fixtures_store import store``) rather than a
conftest, so they stay next to the tests that use them.

The moto server answers requests one at a time. moto checks ``If-None-Match`` / ``If-Match`` and
then writes as two separate steps, so under its threaded server two racing conditional writes
could both win (rare under the GIL, but possible), whereas real S3 makes check and write one
atomic step. Serializing requests gives moto S3's atomicity, so the concurrency tests check our
client logic against the semantics S3 documents and cannot flake on a moto race.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from slipway.store import ArtifactStore, PreconditionFailed, open_store

BUCKET = "slipway-test"

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
S3_ENV_UNSET = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_CONFIG_FILE")


def _serialized(app: Callable[..., Any]) -> Callable[..., Any]:
    lock = threading.Lock()

    def handle(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with lock:
            # materialise the body inside the lock: the write happens while it is produced
            return list(app(environ, start_response))

    return handle


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (free port) for the whole session; yields its URL."""
    from moto.server import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        ThreadedMotoServer,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class SerializedMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = _serialized(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(
                self._ip_address, self._port, app, threaded=True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    server = SerializedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def moto_client(moto_endpoint: str) -> Any:
    """A plain boto3 client for test setup (bucket creation), made once."""
    import boto3

    creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.session.Session().client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", **creds)


@pytest.fixture
def s3_env(moto_endpoint: str, moto_client: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Fake credentials and the moto endpoint in the environment; the bucket exists."""
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    for name in S3_ENV_UNSET:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLIPWAY_S3_ENDPOINT_URL", moto_endpoint)
    # per test, not per session: a mock_aws elsewhere in the session resets moto's state
    moto_client.create_bucket(Bucket=BUCKET)
    return moto_endpoint


def s3_url() -> str:
    """A fresh prefix per test, so tests never see each other's keys."""
    return f"s3://{BUCKET}/t-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> ArtifactStore:
    """The same tests run against both backends."""
    if request.param == "file":
        return open_store((tmp_path / "store").as_uri())
    request.getfixturevalue("s3_env")
    return open_store(s3_url())


# ---- workers for the multi-process tests (module-level so ``spawn`` children can import them)


def put_if_absent_worker(url: str, key: str, ident: int, barrier: Any, results: Any) -> None:
    store = open_store(url)
    barrier.wait()
    try:
        store.put_if_absent(key, f"writer-{ident}".encode())
        results.put((ident, True))
    except PreconditionFailed:
        results.put((ident, False))


def cas_increment(store: ArtifactStore, key: str) -> int:
    """Add one to the JSON counter at ``key`` with a CAS-retry loop; returns how many retries."""
    retries = 0
    while True:
        try:
            data, etag = store.get_with_etag(key)
        except KeyError:
            data, etag = b"0", None
        try:
            store.compare_and_swap(key, str(int(data) + 1).encode(), etag)
            return retries
        except PreconditionFailed:
            retries += 1


def cas_worker(url: str, key: str, times: int, barrier: Any, results: Any) -> None:
    store = open_store(url)
    barrier.wait()
    retries = sum(cas_increment(store, key) for _ in range(times))
    results.put(retries)


MODEL_FILES = {
    "saved_model.pb": b"graph",
    "fingerprint.pb": b"fp",
    "variables/variables.index": b"index",
    "variables/variables.data-00000-of-00001": b"weights",
    "assets/vocab.txt": b"a\nb\n",
    "model.keras": b"keras",
    "metadata.json": b"{}",
}


def write_model(store: ArtifactStore, prefix: str, tag: str = "") -> str:
    """Put a fake trained model (the train step's file layout) under ``prefix``."""
    for rel, data in MODEL_FILES.items():
        store.put_bytes(f"{prefix}/{rel}", data + tag.encode())
    return prefix


def register_worker(url: str, model: str, idents: list[int], barrier: Any, results: Any) -> None:
    from slipway.registry import ModelRegistry

    registry = ModelRegistry(open_store(url), model)
    barrier.wait()
    for ident in idents:
        version = registry.register(f"runs/r{ident}/train/model", {"ident": ident}, run_id=f"run-{ident}")
        results.put((ident, version.number))
