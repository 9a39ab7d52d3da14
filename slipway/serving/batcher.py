"""Micro-batching: coalesce concurrent requests into one forward pass, with a bounded queue.

One asyncio task per server process takes queued requests, waits until ``max_batch_size``
instances are queued or the oldest has waited ``max_wait`` seconds (TF Serving's
``max_batch_size`` / ``batch_timeout_micros``), concatenates them, runs the forward function once
and hands each request its rows. A request larger than ``max_batch_size`` runs as its own batch.

The queue is bounded in *instances*: ``submit`` raises ``QueueFull`` at once when the new
instances would not fit, so an overloaded server answers 503 immediately instead of growing
memory and latency without bound.

The NumPy forward pass runs on the event loop (a 64-instance batch of the reference MLP takes
about a millisecond, less than handing it to a thread); a TensorFlow forward runs in a thread.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable

import numpy as np

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """No room for the request's instances; the server answers 503."""


class MicroBatcher:
    def __init__(
        self,
        forward: Callable[[np.ndarray], np.ndarray],
        *,
        max_batch_size: int,
        max_wait_s: float,
        max_queue_instances: int,
        in_thread: bool = False,
        on_batch: Callable[[np.ndarray, np.ndarray], None] | None = None,
        on_depth: Callable[[int], None] | None = None,
    ) -> None:
        self.forward = forward
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_queue_instances = max_queue_instances
        self.in_thread = in_thread
        self.on_batch = on_batch  # (inputs, outputs) of every forward pass, for metrics
        self.on_depth = on_depth  # queued instances after every change, for metrics
        self._queue: collections.deque[tuple[np.ndarray, asyncio.Future[np.ndarray], float]] = (
            collections.deque()
        )
        self._queued = 0
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def queued_instances(self) -> int:
        return self._queued

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="slipway-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for _, future, _ in self._queue:
            if not future.done():
                future.cancel()

    def submit(self, instances: np.ndarray) -> asyncio.Future[np.ndarray]:
        """Queue ``instances``; the future resolves to their outputs. ``QueueFull`` if no room."""
        n = len(instances)
        if self._queued + n > self.max_queue_instances:
            raise QueueFull(
                f"server overloaded: {self._queued} instances queued, {n} more would exceed the"
                f" limit of {self.max_queue_instances}; retry later"
            )
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._queue.append((instances, future, time.monotonic()))
        self._queued += n
        if self.on_depth:
            self.on_depth(self._queued)
        self._wake.set()
        if self._queued >= self.max_batch_size:
            self._full.set()
        return future

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            if self._queued < self.max_batch_size and self.max_wait_s > 0:
                remaining = self._queue[0][2] + self.max_wait_s - time.monotonic()
                if remaining > 0:
                    self._full.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._full.wait(), remaining)
            batch = self._take()
            if batch:
                await self._execute(batch)

    def _take(self) -> list[tuple[np.ndarray, asyncio.Future[np.ndarray], float]]:
        batch: list[tuple[np.ndarray, asyncio.Future[np.ndarray], float]] = []
        size = 0
        while self._queue:
            n = len(self._queue[0][0])
            if batch and size + n > self.max_batch_size:
                break
            item = self._queue.popleft()
            if item[1].cancelled():  # the client went away while queued
                self._queued -= n
                continue
            batch.append(item)
            size += n
        self._queued -= size
        if self.on_depth:
            self.on_depth(self._queued)
        return batch

    async def _execute(self, batch: list[tuple[np.ndarray, asyncio.Future[np.ndarray], float]]) -> None:
        inputs = batch[0][0] if len(batch) == 1 else np.concatenate([item[0] for item in batch])
        try:
            if self.in_thread:
                outputs = await asyncio.to_thread(self.forward, inputs)
            else:
                outputs = self.forward(inputs)
        except Exception as exc:
            log.exception("forward pass failed for a batch of %d instances", len(inputs))
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        if self.on_batch:
            self.on_batch(inputs, outputs)
        start = 0
        for instances, future, _ in batch:
            end = start + len(instances)
            if not future.done():
                future.set_result(outputs[start:end])
            start = end
