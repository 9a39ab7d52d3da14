"""The model server: a plain ASGI application speaking TF Serving's REST API.

Endpoints (TF Serving's, plus probes and metrics)::

    POST /v1/models/NAME[/versions/N | /labels/L]:predict    instances/inputs -> predictions/outputs
    GET  /v1/models/NAME[/versions/N | /labels/L]            model version status
    GET  /v1/models/NAME[/versions/N | /labels/L]/metadata   signature_def
    GET  /healthz      200 while the process is alive
    GET  /readyz       200 once the model is loaded and warmed up, 503 before
    GET  /metrics      Prometheus text format (slipway/metrics.py)

Written directly against ASGI rather than a framework: the hot path is a route match, a bounded
body read, one ``parse_predict`` and one queued forward pass, and nothing else should cost time
there. Every refusal is ``{"error": "..."}`` with a 4xx code (503 when overloaded or not ready);
a 500 can only come from a failing forward pass or the fault-injection switch (``fault_rate``,
off by default, for canary tests).

The model loads in a background thread after the server starts listening, so ``/healthz``
answers during the load and ``/readyz`` turns 200 only after a warm-up pass at every batch size
the batcher will use.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import random
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from slipway import metrics
from slipway.serving.batcher import MicroBatcher, QueueFull
from slipway.serving.protocol import RequestError, error_body, parse_predict, predict_response

log = logging.getLogger(__name__)

SPEC_ENV = "SLIPWAY_SERVING_SPEC"
SERVING_METRICS = [name for name in metrics.METRICS if name.startswith("slipway_serving_")]
_ROUTE = re.compile(
    r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?:/(?P<metadata>metadata)|:(?P<verb>[A-Za-z]+))?"
)
_JSON = [(b"content-type", b"application/json")]


@dataclass(frozen=True)
class ServerSpec:
    """Everything a server process needs; JSON in ``SLIPWAY_SERVING_SPEC`` for worker processes."""

    model_name: str
    version: int
    model_dir: str
    labels: tuple[str, ...] = ()
    variant: str = "stable"
    max_batch_size: int = 64
    max_batch_wait_ms: float = 1.0
    max_queue_instances: int = 1024
    max_instances_per_request: int = 256
    max_body_bytes: int = 8 * 1024 * 1024
    fault_rate: float = 0.0  # share of predict requests answered 500 on purpose (canary tests)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServerSpec:
        raw = json.loads(text)
        raw["labels"] = tuple(raw.get("labels") or ())
        return cls(**raw)


class ServingApp:
    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.registry = CollectorRegistry()
        made = metrics.collectors(SERVING_METRICS, self.registry)
        ident = {"model": spec.model_name, "version": str(spec.version), "variant": spec.variant}
        self._requests = made["slipway_serving_requests_total"]
        self._ident = ident
        self._code_children: dict[int, Any] = {}
        self._duration = made["slipway_serving_request_duration_seconds"].labels(**ident)
        self._batch_size = made["slipway_serving_batch_size"].labels(**ident)
        self._depth = made["slipway_serving_queue_depth"].labels(**ident)
        self._predictions = made["slipway_serving_predictions_total"]
        self._class_children: list[Any] = []
        made["slipway_serving_model_info"].labels(**ident).set(1)
        self.model: Any = None  # LoadedModel once loaded
        self.batcher: MicroBatcher | None = None
        self.ready = False
        self.load_error: str | None = None
        self._random = random.Random()

    # ------------------------------------------------------------------ lifecycle

    async def startup(self) -> None:
        loop = asyncio.get_running_loop()

        def load() -> None:
            from slipway.serving.model import load as load_model

            _one_blas_thread()
            try:
                model = load_model(Path(self.spec.model_dir))
                self._warm_up(model)
                loop.call_soon_threadsafe(self._activate, model)
            except Exception as exc:
                log.exception("model %s version %s failed to load", self.spec.model_name, self.spec.version)
                self.load_error = str(exc)

        threading.Thread(target=load, name="slipway-model-load", daemon=True).start()

    def _warm_up(self, model: Any) -> None:
        """Run the forward pass at every batch size the batcher can form, before taking traffic."""
        sizes = sorted({1, *range(2, self.spec.max_batch_size + 1, 7), self.spec.max_batch_size})
        for n in sizes:
            model.forward(np.zeros((n, *model.input.shape), dtype=np.float32))

    def _activate(self, model: Any) -> None:
        self.model = model
        self._class_children = [
            self._predictions.labels(**self._ident, **{"class": str(i)}) for i in range(model.num_outputs)
        ]
        self.batcher = MicroBatcher(
            model.forward,
            max_batch_size=self.spec.max_batch_size,
            max_wait_s=self.spec.max_batch_wait_ms / 1000.0,
            max_queue_instances=self.spec.max_queue_instances,
            in_thread=model.forward_kind != "numpy",
            on_batch=self._record_batch,
            on_depth=self._depth.set,
        )
        self.batcher.start()
        self.ready = True
        log.info(
            "serving model %s version %s (%s, labels %s) - ready",
            self.spec.model_name,
            self.spec.version,
            self.spec.variant,
            list(self.spec.labels),
        )

    async def shutdown(self) -> None:
        if self.batcher is not None:
            await self.batcher.stop()

    def _record_batch(self, inputs: np.ndarray, outputs: np.ndarray) -> None:
        self._batch_size.observe(len(inputs))
        counts = np.bincount(outputs.argmax(axis=1), minlength=len(self._class_children))
        for index in np.flatnonzero(counts):
            self._class_children[index].inc(int(counts[index]))

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith("/v1/"):
            started = time.perf_counter()
            try:
                status, body = await self._api(path, method, scope, receive)
            except RequestError as exc:
                status, body = exc.status, error_body(exc.message)
            except Exception as exc:  # a failing forward pass: a server fault, counted as such
                log.exception("%s %s failed", method, path[:200])
                status, body = 500, error_body(f"internal error: {type(exc).__name__}: {exc}")
            await _respond(send, status, body)
            self._count(status)
            if path.endswith(":predict"):
                self._duration.observe(time.perf_counter() - started)
            return
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, error_body(f"{method} is not allowed on {path}; use GET"))
        elif path == "/healthz":
            await _respond(send, 200, b'{"status": "alive"}')
        elif path == "/readyz":
            if self.ready:
                await _respond(send, 200, b'{"status": "ready"}')
            else:
                reason = f"model failed to load: {self.load_error}" if self.load_error else "model loading"
                await _respond(send, 503, error_body(reason))
        elif path == "/metrics":
            text, content_type = metrics.scrape(self.registry)
            await _respond(send, 200, text, [(b"content-type", content_type.encode())])
        else:
            await _respond(send, 404, error_body(f"no such endpoint {path[:200]!r}"))

    def _count(self, status: int) -> None:
        child = self._code_children.get(status)
        if child is None:
            child = self._code_children[status] = self._requests.labels(**self._ident, code=str(status))
        child.inc()

    async def _api(self, path: str, method: str, scope: dict[str, Any], receive: Any) -> tuple[int, bytes]:
        match = _ROUTE.fullmatch(path)
        if match is None:
            raise RequestError(404, f"no such endpoint {path[:200]!r}")
        self._check_servable(match["name"], match["version"], match["label"])
        verb = match["verb"]
        if verb is None:
            if method not in ("GET", "HEAD"):
                raise RequestError(405, f"{method} is not allowed on {path[:200]}; use GET")
            return 200, self._metadata() if match["metadata"] else self._status()
        if match["metadata"]:
            raise RequestError(404, f"no such endpoint {path[:200]!r}")
        if verb != "predict":
            raise RequestError(
                400,
                f"':{verb[:50]}' is not supported: this server answers ':predict' (TF Serving's predict API)",
            )
        if method != "POST":
            raise RequestError(405, f"{method} is not allowed on ':predict'; use POST")
        if not self.ready:
            raise RequestError(503, "model is not ready yet (loading or warming up)")
        _check_content_type(scope)
        body = await _read_body(scope, receive, self.spec.max_body_bytes)
        request = parse_predict(body, self.model.input, self.spec.max_instances_per_request)
        if self.spec.fault_rate and self._random.random() < self.spec.fault_rate:
            return 500, error_body("injected fault (fault_rate is set for testing)")
        try:
            future = self.batcher.submit(request.instances)  # type: ignore[union-attr]
        except QueueFull as exc:
            raise RequestError(503, str(exc)) from None
        outputs = await future
        return 200, predict_response(outputs, request.columnar)

    def _check_servable(self, name: str, version: str | None, label: str | None) -> None:
        spec = self.spec
        if name != spec.model_name:
            raise RequestError(
                404, f"Servable not found for request: model {name[:100]!r} is not served here"
            )
        if version is not None:
            if not version.isdigit():
                raise RequestError(400, f"version must be an integer, got {version[:50]!r}")
            if int(version) != spec.version:
                raise RequestError(
                    404,
                    f"Servable not found for request: Specific({name}, {int(version)});"
                    f" this server serves version {spec.version}",
                )
        if label is not None and label not in spec.labels:
            raise RequestError(
                404, f"Unrecognized servable version label: {label[:100]!r} (labels: {list(spec.labels)})"
            )

    def _status(self) -> bytes:
        state = "AVAILABLE" if self.ready else ("END" if self.load_error else "LOADING")
        error = {"error_code": "OK", "error_message": ""}
        if self.load_error:
            error = {"error_code": "UNKNOWN", "error_message": self.load_error}
        return json.dumps(
            {"model_version_status": [{"version": str(self.spec.version), "state": state, "status": error}]}
        ).encode()

    def _metadata(self) -> bytes:
        if not self.ready:
            raise RequestError(503, "model is not ready yet (loading or warming up)")
        return json.dumps(
            {
                "model_spec": {
                    "name": self.spec.model_name,
                    "signature_name": "",
                    "version": str(self.spec.version),
                },
                "metadata": {
                    "signature_def": {"signature_def": {"serving_default": self.model.signature_def}}
                },
            }
        ).encode()


def _one_blas_thread() -> None:
    """One BLAS thread per server process: a micro-batch is too small to gain from more, and
    BLAS threads spinning against each other (or against a container's CPU quota) made a
    16-instance batch 50x slower on a busy 2-core machine. Scale with ``workers`` instead."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - OPENBLAS_NUM_THREADS=1 in the image does the same
        return
    threadpool_limits(limits=1, user_api="blas")


def _check_content_type(scope: dict[str, Any]) -> None:
    for key, value in scope["headers"]:
        if key == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            if media != b"application/json" and not media.endswith(b"+json"):
                raise RequestError(
                    415, f"content type {value[:100].decode('latin-1')!r} is not JSON: send application/json"
                )


async def _read_body(scope: dict[str, Any], receive: Any, limit: int) -> bytes:
    for key, value in scope["headers"]:
        if key == b"content-length" and value.isdigit() and int(value) > limit:
            raise RequestError(413, f"request body of {int(value)} bytes exceeds the limit of {limit} bytes")
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestError(400, "the client disconnected before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _respond(
    send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    extra = [(b"retry-after", b"1")] if status == 503 else []
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*(headers or _JSON), (b"content-length", str(len(body)).encode()), *extra],
        }
    )
    await send({"type": "http.response.body", "body": body})


def app_from_env() -> ServingApp:
    """Factory for ``uvicorn --factory`` worker processes: the spec comes from the environment."""
    return ServingApp(ServerSpec.from_json(os.environ[SPEC_ENV]))
