"""``python -m slipway route``: the local weighted traffic router in front of stable and canary.

The embedded default of the traffic-router interface (the Gateway API ``HTTPRoute`` is the
production one). Every request that is not an admin, probe or metrics path is forwarded to one
backend, chosen by *smooth weighted round-robin* (nginx's algorithm): with weights 90/10 exactly
one request in ten goes to the canary, spread evenly rather than drawn at random, so a canary step
gets its share even at low traffic. The chosen backend is named in the ``x-slipway-backend``
answer header.

Admin API (weights change at run time, e.g. by a canary rollout)::

    GET /admin/weights                 {"stable": 90, "canary": 10}
    PUT /admin/weights  {"canary": 25, "stable": 75}   -> the new weights

A token (``SLIPWAY_ROUTER_ADMIN_TOKEN``) makes the admin API require ``Authorization: Bearer
<token>``; without one it answers only clients on the loopback interface. ``/healthz``,
``/readyz`` and ``/metrics`` (``slipway_router_*``, per backend) are the router's own.

Backends are reached over pooled keep-alive HTTP/1.1 connections (``_Upstream``: asyncio streams,
a few lines of HTTP, no client library: measured in front of the same server on the same busy
2-core machine, aiohttp's client gave 1,260-1,860 requests/s and these streams 1,420-3,310, and a
small machine's router shares its CPUs with the servers). An unreachable backend
answers 502 and a slow one 504, both ``{"error": ...}`` naming the backend. A request that fails on
a pooled connection the backend had closed (keep-alive race) is retried once on a new one.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from prometheus_client import CollectorRegistry

from slipway import metrics
from slipway.errors import BadInputError

log = logging.getLogger(__name__)

ROUTER_METRICS = [name for name in metrics.METRICS if name.startswith("slipway_router_")]
_FORWARDED_HEADERS = (b"content-type", b"accept", b"authorization", b"x-request-id")


class RouterError(BadInputError):
    """Bad router settings or a bad weights update; the message names the problem."""


def parse_backends(items: list[str]) -> dict[str, str]:
    """``["stable=http://127.0.0.1:8501", ...]`` -> ``{"stable": "http://127.0.0.1:8501"}``."""
    backends: dict[str, str] = {}
    for item in items:
        name, sep, url = item.partition("=")
        name = name.strip()
        parts = urlsplit(url.strip())
        if not sep or not name or parts.scheme != "http" or not parts.netloc:
            raise RouterError(f"backend {item!r} must look like NAME=http://HOST:PORT (plain http)")
        if name in backends:
            raise RouterError(f"backend {name!r} is given twice")
        backends[name] = url.strip().rstrip("/")
    if not backends:
        raise RouterError("the router needs at least one --backend")
    return backends


def parse_weights(text: str | None, backends: Mapping[str, str]) -> dict[str, int]:
    """``"stable=90,canary=10"`` -> weights for every backend (missing ones get 0)."""
    if not text:
        first = next(iter(backends))
        return {name: 100 if name == first else 0 for name in backends}
    raw: dict[str, Any] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep:
            raise RouterError(f"weight {item!r} must look like NAME=WEIGHT")
        try:
            raw[name.strip()] = int(value)
        except ValueError:
            raise RouterError(f"weight {item!r}: {value!r} is not an integer") from None
    return check_weights(raw, backends, partial=True)


def check_weights(raw: object, backends: Mapping[str, str], *, partial: bool) -> dict[str, int]:
    """Validate a weights update; backends not named keep weight 0 (``partial``) or are an error."""
    if not isinstance(raw, dict) or not raw:
        raise RouterError('weights must be a non-empty JSON object such as {"stable": 90, "canary": 10}')
    unknown = sorted(set(raw) - set(backends))
    if unknown:
        raise RouterError(f"unknown backend(s) {unknown}: the router has {sorted(backends)}")
    weights = {}
    for name in backends:
        value = raw.get(name, 0 if partial else None)
        if value is None:
            raise RouterError(f"weights must name every backend ({sorted(backends)}); {name!r} is missing")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
            raise RouterError(f"weight of {name!r} must be an integer from 0 to 1000000, got {value!r}")
        weights[name] = value
    if sum(weights.values()) == 0:
        raise RouterError("at least one backend needs a weight above 0")
    return weights


class SmoothWeightedRoundRobin:
    """nginx's smooth weighted round-robin: exact shares over every sum-of-weights requests."""

    def __init__(self, weights: Mapping[str, int]) -> None:
        self.set(weights)

    def set(self, weights: Mapping[str, int]) -> None:
        self.weights = dict(weights)
        self._current = dict.fromkeys(weights, 0)
        self._total = sum(weights.values())

    def next(self) -> str:
        best = None
        for name, weight in self.weights.items():
            self._current[name] += weight
            if best is None or self._current[name] > self._current[best]:
                best = name
        assert best is not None
        self._current[best] -= self._total
        return best


class UpstreamError(Exception):
    """The backend could not be reached or answered something that is not HTTP/1.1."""


class _Upstream:
    """Keep-alive HTTP/1.1 connections to one backend, reused request after request."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise RouterError(f"backend {url!r}: the local router speaks plain http only")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.base_path = parts.path.rstrip("/")
        self.host_header = parts.netloc.encode("latin-1")
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(
        self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, bytes, bytes]:
        """(status, content type, body) of the backend's answer."""
        head = [
            f"{method} {self.base_path}{target} HTTP/1.1\r\n".encode("latin-1"),
            b"host: ",
            self.host_header,
        ]
        for key, value in headers:
            head += [b"\r\n", key, b": ", value]
        head.append(b"\r\ncontent-length: %d\r\n\r\n" % len(body))
        payload = b"".join(head) + body
        while self._idle:  # a pooled connection may have been closed by the backend meanwhile
            reader, writer = self._idle.pop()
            try:
                return await self._exchange(reader, writer, payload)
            except (ConnectionError, asyncio.IncompleteReadError):
                continue
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            raise UpstreamError(str(exc) or type(exc).__name__) from None
        try:
            return await self._exchange(reader, writer, payload)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
            raise UpstreamError(str(exc) or type(exc).__name__) from None

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
    ) -> tuple[int, bytes, bytes]:
        """One request on one connection; the connection goes back to the pool only after a whole
        answer (a failure or a timeout closes it, so no half-read answer is ever reused)."""
        try:
            return await self._exchange_once(reader, writer, payload)
        except BaseException:
            writer.close()
            raise

    async def _exchange_once(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
    ) -> tuple[int, bytes, bytes]:
        writer.write(payload)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status_line = lines[0].split(b" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/1."):
            raise ValueError(f"not an HTTP/1.1 answer: {lines[0][:80]!r}")
        status = int(status_line[1])
        length = -1
        content_type = b"application/json"
        chunked = close = False
        for line in lines[1:]:
            key, _, value = line.partition(b":")
            key = key.strip().lower()
            value = value.strip()
            if key == b"content-length":
                length = int(value)
            elif key == b"content-type":
                content_type = value
            elif key == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif key == b"connection":
                close = value.lower() == b"close"
        if chunked:
            body = await _read_chunked(reader)
        elif length >= 0:
            body = await reader.readexactly(length)
        else:
            body, close = await reader.read(), True
        if close:
            writer.close()
        else:
            self._idle.append((reader, writer))
        return status, content_type, body

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers are sent by the servers we front
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


@dataclass
class _Backend:
    name: str
    url: str
    requests: dict[int, Any]
    duration: Any
    upstream: _Upstream


class RouterApp:
    def __init__(
        self,
        backends: Mapping[str, str],
        weights: Mapping[str, int],
        *,
        admin_token: str | None,
        timeout: float,
    ) -> None:
        self.urls = dict(backends)
        self.admin_token = admin_token
        self.timeout = timeout
        self.registry = CollectorRegistry()
        made = metrics.collectors(ROUTER_METRICS, self.registry)
        self._requests = made["slipway_router_requests_total"]
        self._weight_gauge = made["slipway_router_backend_weight"]
        self.backends = {
            name: _Backend(
                name,
                url,
                {},
                made["slipway_router_request_duration_seconds"].labels(backend=name),
                _Upstream(url),
            )
            for name, url in self.urls.items()
        }
        self.balancer = SmoothWeightedRoundRobin(check_weights(dict(weights), self.urls, partial=True))
        self._publish_weights()

    def _publish_weights(self) -> None:
        for name, weight in self.balancer.weights.items():
            self._weight_gauge.labels(backend=name).set(weight)

    def set_weights(self, weights: Mapping[str, int]) -> dict[str, int]:
        self.balancer.set(check_weights(dict(weights), self.urls, partial=True))
        self._publish_weights()
        log.info("router weights now %s", self.balancer.weights)
        return dict(self.balancer.weights)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path.startswith("/admin/"):
            await self._admin(scope, receive, send)
        elif path == "/healthz":
            await _respond(send, 200, b'{"status": "alive"}')
        elif path == "/readyz":
            await _respond(send, 200, b'{"status": "ready"}')
        elif path == "/metrics":
            body, content_type = metrics.scrape(self.registry)
            await _respond(send, 200, body, content_type.encode())
        else:
            await self._forward(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for backend in self.backends.values():
                    backend.upstream.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _forward(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = time.perf_counter()
        backend = self.backends[self.balancer.next()]
        body = await _read_body(receive)
        target = scope["raw_path"].decode("latin-1") if scope.get("raw_path") else scope["path"]
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        headers = [(key, value) for key, value in scope["headers"] if key in _FORWARDED_HEADERS]
        content_type = b"application/json"
        try:
            async with asyncio.timeout(self.timeout):
                status, content_type, payload = await backend.upstream.request(
                    scope["method"], target, headers, body
                )
        except TimeoutError:
            status = 504
            payload = _error(f"backend {backend.name!r} did not answer within {self.timeout:g} s")
        except UpstreamError as exc:
            status = 502
            payload = _error(f"backend {backend.name!r} ({backend.url}) is unreachable: {exc}")
        await _respond(send, status, payload, content_type, [(b"x-slipway-backend", backend.name.encode())])
        child = backend.requests.get(status)
        if child is None:
            child = backend.requests[status] = self._requests.labels(backend=backend.name, code=str(status))
        child.inc()
        backend.duration.observe(time.perf_counter() - started)

    async def _admin(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] != "/admin/weights":
            await _respond(send, 404, _error(f"no such admin endpoint {scope['path'][:200]!r}"))
            return
        if not self._admin_allowed(scope):
            why = (
                "a valid bearer token"
                if self.admin_token
                else "a client on localhost (no admin token is set)"
            )
            await _respond(send, 403, _error(f"the admin API needs {why}"))
            return
        method = scope["method"]
        if method == "GET":
            await _respond(send, 200, orjson.dumps(self.balancer.weights))
            return
        if method not in ("PUT", "POST"):
            await _respond(send, 405, _error(f"{method} is not allowed on /admin/weights; use GET or PUT"))
            return
        body = await _read_body(receive, limit=64 * 1024)
        try:
            raw = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            await _respond(send, 400, _error(f"malformed JSON: {exc}"))
            return
        try:
            weights = self.set_weights(raw)
        except RouterError as exc:
            await _respond(send, 400, _error(str(exc)))
            return
        await _respond(send, 200, orjson.dumps(weights))

    def _admin_allowed(self, scope: dict[str, Any]) -> bool:
        if self.admin_token:
            for key, value in scope["headers"]:
                if key == b"authorization":
                    given = value.decode("latin-1").removeprefix("Bearer ").strip()
                    return hmac.compare_digest(given.encode(), self.admin_token.encode())
            return False
        client = scope.get("client")
        try:
            return client is not None and ipaddress.ip_address(client[0]).is_loopback
        except ValueError:
            return False


def _error(message: str) -> bytes:
    return orjson.dumps({"error": message})


async def _read_body(receive: Any, limit: int | None = None) -> bytes:
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            return b""
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _respond(
    send: Any,
    status: int,
    body: bytes,
    content_type: bytes = b"application/json",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def run_router(
    backends: Mapping[str, str],
    weights: Mapping[str, int],
    *,
    host: str,
    port: int,
    admin_token: str | None,
    timeout: float,
) -> None:
    import uvicorn

    app = RouterApp(backends, weights, admin_token=admin_token, timeout=timeout)
    log.info("routing http://%s:%d to %s with weights %s", host, port, dict(backends), app.balancer.weights)
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=75,
        backlog=2048,
    )


class LocalRouterClient:
    """Reads and sets the weights of a running local router (what a canary rollout calls)."""

    def __init__(self, admin_url: str, token: str | None = None, timeout: float = 10.0) -> None:
        self.url = admin_url.rstrip("/") + "/admin/weights"
        self.token = token
        self.timeout = timeout

    def _request(self, method: str, body: bytes | None = None) -> dict[str, int]:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(self.url, data=body, method=method)
        request.add_header("content-type", "application/json")
        if self.token:
            request.add_header("authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return orjson.loads(answer.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise RouterError(f"router {self.url} refused {method}: {exc.code} {detail}") from None

    def get_weights(self) -> dict[str, int]:
        return self._request("GET")

    def set_weights(self, weights: Mapping[str, int]) -> dict[str, int]:
        return self._request("PUT", orjson.dumps(dict(weights)))
