"""Micro-batching and the ASGI app, in process with a fake forward pass (no TensorFlow).

The real model and real server processes are covered in ``test_server.py``; here the batcher's
coalescing and bounded queue and the app's routing and refusals are checked deterministically.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import orjson
import pytest

from slipway.serving.app import ServerSpec, ServingApp
from slipway.serving.batcher import MicroBatcher, QueueFull
from slipway.serving.model import LoadedModel
from slipway.serving.protocol import InputSpec


def _double(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1) * 2


def test_concurrent_requests_share_one_forward_pass_and_get_their_own_rows() -> None:
    calls: list[int] = []

    def forward(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        return _double(x)

    async def scenario() -> list[np.ndarray]:
        batcher = MicroBatcher(forward, max_batch_size=8, max_wait_s=0.05, max_queue_instances=32)
        batcher.start()
        sizes = [1, 2, 3]  # 6 instances < 8: one batch after the wait
        futures = [batcher.submit(np.full((n, 2), i, dtype=np.float32)) for i, n in enumerate(sizes)]
        results = await asyncio.gather(*futures)
        big = await batcher.submit(np.ones((20, 2), dtype=np.float32))  # larger than a batch: alone
        await batcher.stop()
        return [*results, big]

    results = asyncio.run(scenario())
    assert calls == [6, 20]
    for i, n in enumerate([1, 2, 3]):
        np.testing.assert_array_equal(results[i], np.full((n, 2), 2 * i))
    assert results[3].shape == (20, 2)


def test_full_batches_do_not_wait_and_batches_never_exceed_the_maximum() -> None:
    calls: list[int] = []

    def forward(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        return _double(x)

    async def scenario() -> None:
        batcher = MicroBatcher(forward, max_batch_size=4, max_wait_s=30.0, max_queue_instances=64)
        batcher.start()
        futures = [batcher.submit(np.zeros((1, 2), dtype=np.float32)) for _ in range(8)]
        await asyncio.wait_for(asyncio.gather(*futures), 10)  # would hang 30 s if full batches waited
        await batcher.stop()

    asyncio.run(scenario())
    assert calls == [4, 4]


def test_queue_is_bounded_in_instances() -> None:
    async def scenario() -> None:
        batcher = MicroBatcher(_double, max_batch_size=4, max_wait_s=1.0, max_queue_instances=5)
        batcher.submit(np.zeros((3, 2), dtype=np.float32))  # not started: nothing drains
        batcher.submit(np.zeros((2, 2), dtype=np.float32))
        with pytest.raises(QueueFull, match="5 instances queued, 1 more would exceed the limit of 5"):
            batcher.submit(np.zeros((1, 2), dtype=np.float32))
        assert batcher.queued_instances == 5

    asyncio.run(scenario())


# --------------------------------------------------------------------------- the ASGI app


class _Blockable:
    """A forward pass that can be held (to fill the queue) and released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.release.set()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.release.wait(10)
        out = np.zeros((len(x), 3), dtype=np.float32)
        out[:, 1] = 1.0
        return out


def _app(forward: Any, **limits: Any) -> ServingApp:
    spec = ServerSpec(model_name="m", version=3, model_dir="/nonexistent", labels=("champion",), **limits)
    app = ServingApp(spec)
    model = LoadedModel(
        forward=forward,
        forward_kind="tf.function",  # runs in a thread, so a held pass does not block the loop
        input=InputSpec("inputs", (2,)),
        output_name="output_0",
        num_outputs=3,
        signature_def={"inputs": {}},
    )
    app._activate(model)
    return app


async def _call(
    app: ServingApp, method: str, path: str, body: bytes = b"", content_type: bytes = b"application/json"
) -> tuple[int, dict[str, Any] | str]:
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    scope = {"type": "http", "method": method, "path": path, "headers": headers, "query_string": b""}
    await app(scope, receive, send)
    raw = sent[1]["body"]
    try:
        return sent[0]["status"], orjson.loads(raw)
    except orjson.JSONDecodeError:
        return sent[0]["status"], raw.decode()


def test_routes_versions_labels_and_refusals() -> None:
    body = orjson.dumps({"instances": [[1.0, 2.0]]})

    async def scenario() -> None:
        app = _app(_Blockable(), max_body_bytes=2048)
        ok = (200, {"predictions": [[0.0, 1.0, 0.0]]})
        assert await _call(app, "POST", "/v1/models/m:predict", body) == ok
        assert await _call(app, "POST", "/v1/models/m/versions/3:predict", body) == ok
        assert await _call(app, "POST", "/v1/models/m/labels/champion:predict", body) == ok
        cases = [
            ("POST", "/v1/models/other:predict", body, b"application/json", 404, "not served here"),
            ("POST", "/v1/models/m/versions/4:predict", body, b"application/json", 404, "serves version 3"),
            ("POST", "/v1/models/m/versions/x:predict", body, b"application/json", 400, "integer"),
            ("POST", "/v1/models/m/labels/canary:predict", body, b"application/json", 404, "label"),
            ("POST", "/v1/models/m:classify", body, b"application/json", 400, ":predict"),
            ("GET", "/v1/models/m:predict", b"", b"application/json", 405, "use POST"),
            ("POST", "/v1/models/m:predict", body, b"text/plain", 415, "not JSON"),
            ("POST", "/v1/models/m:predict", b" " * 4096, b"application/json", 413, "exceeds the limit"),
            ("POST", "/v1/nothing", body, b"application/json", 404, "no such endpoint"),
            ("DELETE", "/healthz", b"", b"application/json", 405, "use GET"),
        ]
        for method, path, data, ctype, status, words in cases:
            got_status, got = await _call(app, method, path, data, ctype)
            assert (got_status, words in got["error"]) == (status, True), (path, got)
        status, doc = await _call(app, "GET", "/v1/models/m/labels/champion")
        assert doc == {
            "model_version_status": [
                {"version": "3", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            ]
        }
        status, doc = await _call(app, "GET", "/v1/models/m/versions/3/metadata")
        assert doc["model_spec"] == {"name": "m", "signature_name": "", "version": "3"}
        assert (await _call(app, "GET", "/readyz"))[0] == 200
        _, text = await _call(app, "GET", "/metrics")
        assert 'slipway_serving_requests_total{code="404",model="m",variant="stable",version="3"} 4.0' in text
        assert (
            'slipway_serving_predictions_total{class="1",model="m",variant="stable",version="3"} 3.0' in text
        )
        assert 'slipway_serving_model_info{model="m",variant="stable",version="3"} 1.0' in text
        await app.shutdown()

    asyncio.run(scenario())


def test_a_full_queue_answers_503_at_once_and_recovers() -> None:
    forward = _Blockable()
    one = orjson.dumps({"instances": [[1.0, 2.0]] * 2})

    async def scenario() -> None:
        app = _app(forward, max_batch_size=2, max_batch_wait_ms=0, max_queue_instances=4)
        forward.release.clear()  # the first batch is held in the forward pass
        held = [asyncio.create_task(_call(app, "POST", "/v1/models/m:predict", one))]
        await asyncio.sleep(0.2)  # its batch is taken and held in the forward pass
        held += [asyncio.create_task(_call(app, "POST", "/v1/models/m:predict", one)) for _ in range(2)]
        await asyncio.sleep(0.1)
        assert app.batcher.queued_instances == 4  # the queue is full
        status, doc = await asyncio.wait_for(_call(app, "POST", "/v1/models/m:predict", one), 2)
        assert status == 503 and "queue" in doc["error"]
        forward.release.set()
        assert [status for status, _ in await asyncio.gather(*held)] == [200, 200, 200]
        assert (await _call(app, "POST", "/v1/models/m:predict", one))[0] == 200
        await app.shutdown()

    asyncio.run(scenario())


def test_fault_injection_answers_500_only_when_switched_on() -> None:
    body = orjson.dumps({"instances": [[1.0, 2.0]]})

    async def scenario(rate: float) -> list[int]:
        app = _app(_Blockable(), fault_rate=rate)
        codes = [(await _call(app, "POST", "/v1/models/m:predict", body))[0] for _ in range(40)]
        await app.shutdown()
        return codes

    assert set(asyncio.run(scenario(0.0))) == {200}
    assert set(asyncio.run(scenario(1.0))) == {500}


def test_a_failing_forward_pass_is_a_counted_500_and_the_server_goes_on() -> None:
    body = orjson.dumps({"instances": [[1.0, 2.0]]})
    calls = []

    def flaky(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        if len(calls) == 1:
            raise RuntimeError("device lost")
        return _Blockable()(x)

    async def scenario() -> None:
        app = _app(flaky)
        status, doc = await _call(app, "POST", "/v1/models/m:predict", body)
        assert status == 500 and "device lost" in doc["error"]
        assert (await _call(app, "POST", "/v1/models/m:predict", body))[0] == 200
        _, text = await _call(app, "GET", "/metrics")
        assert 'slipway_serving_requests_total{code="500",model="m",variant="stable",version="3"} 1.0' in text
        await app.shutdown()

    asyncio.run(scenario())
