"""``python -m slipway serve``: fetch and verify a version, then run the ASGI server on uvicorn.

The parent process does the checks that need no TensorFlow (resolve the alias, download, verify
every checksum) and exits with a clear error before binding the port if any fails. The model
itself loads in the server process(es): one uvicorn process for ``workers: 1``, otherwise uvicorn's
supervisor with ``workers`` processes, each loading the verified copy, sharing the port, and
writing metrics to a shared ``PROMETHEUS_MULTIPROC_DIR`` so any worker's ``/metrics`` shows all.

uvicorn runs with uvloop and httptools (both in the lock), no access log (Prometheus counts
requests), and a keep-alive long enough for load balancers.
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

from slipway.config import ServingConfig
from slipway.serving.app import SPEC_ENV, ServerSpec, ServingApp
from slipway.serving.artifact import fetch_verified
from slipway.store import open_store

log = logging.getLogger(__name__)


def prepare(
    store_url: str,
    model: str,
    ref: str,
    serving: ServingConfig,
    *,
    variant: str = "stable",
    fault_rate: float = 0.0,
) -> ServerSpec:
    """Resolve and verify the version; the spec every server process is started with."""

    local = fetch_verified(open_store(store_url), model, ref, serving.cache_dir)
    log.info(
        "model %s version %s verified (%d files) at %s",
        model,
        local.version,
        len(list(local.path.rglob("*"))),
        local.path,
    )
    return ServerSpec(
        model_name=model,
        version=local.version,
        model_dir=str(local.path),
        labels=local.labels,
        variant=variant,
        max_batch_size=serving.max_batch_size,
        max_batch_wait_ms=serving.max_batch_wait_ms,
        max_queue_instances=serving.max_queue_instances,
        max_instances_per_request=serving.max_instances_per_request,
        max_body_bytes=serving.max_body_bytes,
        fault_rate=fault_rate,
    )


def run(spec: ServerSpec, host: str, port: int, workers: int = 1) -> None:
    """Serve until interrupted (SIGINT/SIGTERM stop uvicorn gracefully)."""
    import uvicorn

    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "access_log": False,
        "log_level": "warning",
        "timeout_keep_alive": 75,
        "backlog": 2048,
    }
    log.info(
        "serving %s version %s (%s) on http://%s:%d with %d worker(s)",
        spec.model_name,
        spec.version,
        spec.variant,
        host,
        port,
        workers,
    )
    if workers == 1:
        uvicorn.run(ServingApp(spec), **options)
        return
    os.environ[SPEC_ENV] = spec.to_json()
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="slipway-metrics-")
    uvicorn.run("slipway.serving.app:app_from_env", factory=True, workers=workers, **options)
