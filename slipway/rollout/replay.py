"""Demo traffic: replay test-set images through the router while a rollout runs.

Each worker thread keeps one keep-alive connection and sends ``instances_per_request`` images per
predict request, at most ``rate`` requests per second in all (0: as fast as it can). Answers are
counted by the backend the router named (``x-slipway-backend``) and status code, which is how the
share of requests a canary answered is measured from the client's side.
"""

from __future__ import annotations

import collections
import http.client
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import orjson


class TrafficReplayer:
    def __init__(
        self,
        url: str,
        model: str,
        images: np.ndarray,
        *,
        rate: float = 0.0,
        threads: int = 4,
        instances_per_request: int = 16,
    ) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = f"/v1/models/{model}:predict"
        self.images = np.asarray(images, dtype=np.float32)
        self.rate = rate
        self.threads = threads
        self.batch = instances_per_request
        self.counts: collections.Counter[tuple[str, int]] = collections.Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._bodies = [
            orjson.dumps({"instances": self.images[i : i + self.batch].tolist()})
            for i in range(0, max(len(self.images) - self.batch, 1), self.batch)
        ]

    def _work(self, index: int) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        interval = self.threads / self.rate if self.rate > 0 else 0.0
        n = index
        next_at = time.monotonic()
        while not self._stop.is_set():
            body = self._bodies[n % len(self._bodies)]
            n += self.threads
            try:
                conn.request("POST", self.path, body, {"content-type": "application/json"})
                answer = conn.getresponse()
                answer.read()
                key = (answer.getheader("x-slipway-backend") or "?", answer.status)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                key = ("?", 0)
            with self._lock:
                self.counts[key] += 1
            if interval:
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    next_at = time.monotonic()
        conn.close()

    def start(self) -> TrafficReplayer:
        self._stop.clear()
        self._workers = [
            threading.Thread(target=self._work, args=(i,), daemon=True) for i in range(self.threads)
        ]
        for worker in self._workers:
            worker.start()
        return self

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        for worker in self._workers:
            worker.join(15)
        return self.totals()

    def totals(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self.counts)
        by_backend: dict[str, int] = collections.Counter()
        for (backend, _), n in counts.items():
            by_backend[backend] += n
        total = sum(by_backend.values())
        return {
            "total": total,
            "by_backend": dict(by_backend),
            "by_backend_code": {f"{b}/{c}": n for (b, c), n in sorted(counts.items())},
            "canary_share": by_backend.get("canary", 0) / total if total else 0.0,
        }

    def __enter__(self) -> TrafficReplayer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
