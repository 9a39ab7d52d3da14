"""The stand-in API server with a kubelet and a scheduler that can take a node's pod away.

``KubeletStandIn`` is ``KubeStandIn`` in ``kubelet`` mode: every created pod really runs - its
container's command and args as a local process (``sys.executable`` in place of the image's
``python``), with the pod spec's env plus ``extra_env`` - and goes Pending -> Running ->
Succeeded / Failed with the process's exit code. The process's output, as it comes, is the
pod's log (the provider streams it into the task log).

What the base stand-in cannot do, and this class is for, is take a *running* pod away the way
Kubernetes does (``kubernetes.io/docs/concepts/workloads/pods/disruptions``, pod conditions):

* ``preempt`` - the scheduler evicts a lower-priority pod for a higher-priority one: the pod gets
  the ``DisruptionTarget`` condition (reason ``PreemptionByScheduler``) and a deletion timestamp,
  the scheduler records a ``Preempted`` event, the kubelet kills the container (SIGKILL, exit
  137), the pod turns Failed and is then removed from the API - usually before anyone reads it
  again, so only the event tells what happened;
* ``evict`` - node-pressure eviction by the kubelet: ``DisruptionTarget`` (reason
  ``TerminationByKubelet``), ``status.reason: Evicted``, an ``Evicted`` event, the container
  killed; the Failed pod stays in the API until someone deletes it (as on a real node).

Deleting a pod whose process still runs kills the process, as the kubelet would.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.k8s.kube_standin import REPO, KubeStandIn, _container

KUBELET = "kubelet"
NODE = "standin-gpu-node-1"
EVICTION_MESSAGE = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 51200Ki."

Key = tuple[str, str]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class KubeletStandIn(KubeStandIn):
    behaviour: str = KUBELET
    extra_env: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._processes: dict[Key, subprocess.Popen[str]] = {}
        self._exited: dict[Key, threading.Event] = {}

    def stop(self) -> None:
        for key in list(self._processes):
            self._kill(key)
        super().stop()

    # ------------------------------------------------------------------ what a test does

    def running(self) -> list[str]:
        """Names of the pods whose container process is alive."""
        return [name for (_, name), p in list(self._processes.items()) if p.poll() is None]

    def preempt(self, name: str | None = None, namespace: str = "slipway", *, timeout: float = 30) -> str:
        """Preempt a running pod as the scheduler does; returns its name (the pod is then gone)."""
        key = self._running_key(name, namespace)
        victim_of = f"{namespace}/high-priority-{uuid.uuid4().hex[:5]}"
        self._disrupt(
            key,
            condition={
                "reason": "PreemptionByScheduler",
                "message": "default-scheduler: preempting to accommodate a higher priority pod",
            },
            event={
                "reason": "Preempted",
                "type": "Normal",
                "message": f"Preempted by pod {victim_of} on node {NODE}",
                "source": {"component": "default-scheduler"},
            },
            timeout=timeout,
        )
        with self._lock:
            self.pods.pop(key, None)  # graceful deletion completes once the container is dead
        return key[1]

    def evict(self, name: str | None = None, namespace: str = "slipway", *, timeout: float = 30) -> str:
        """Evict a running pod for node memory pressure; the Failed pod stays (returns its name)."""
        key = self._running_key(name, namespace)
        self._disrupt(
            key,
            condition={"reason": "TerminationByKubelet", "message": EVICTION_MESSAGE},
            event={
                "reason": "Evicted",
                "type": "Warning",
                "message": EVICTION_MESSAGE,
                "source": {"component": KUBELET, "host": NODE},
            },
            status={"reason": "Evicted", "message": EVICTION_MESSAGE},
            deleting=False,
            timeout=timeout,
        )
        return key[1]

    # ------------------------------------------------------------------ API routes it changes

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any, str]:
        parts = path.strip("/").split("/")
        # /api/v1/namespaces/<ns>/<kind>[/<name>]
        if len(parts) >= 5 and parts[:3] == ["api", "v1", "namespaces"]:
            namespace, kind = parts[3], parts[4]
            if kind == "events" and method == "GET" and len(parts) == 5 and "watch" not in query:
                return 200, self._event_list(namespace, query), "application/json"
            if kind == "pods" and method == "DELETE" and len(parts) == 6:
                self._kill((namespace, parts[5]))
        return super().handle(method, path, query, body)

    def _create_pod(self, namespace: str, body: dict[str, Any]) -> tuple[int, Any, str]:
        if self.behaviour != KUBELET:
            return super()._create_pod(namespace, body)
        status, pod, ctype = self._crud(self.pods, "Pod", "v1", "POST", namespace, None, body)
        pod["status"] = {"phase": "Pending", "conditions": [_condition("PodScheduled")]}
        pod["_behaviour"] = KUBELET
        key = (namespace, pod["metadata"]["name"])
        self._exited[key] = threading.Event()
        threading.Thread(target=self._kubelet, args=(pod,), daemon=True).start()
        return status, {k: v for k, v in pod.items() if not k.startswith("_")}, ctype

    # ------------------------------------------------------------------ the kubelet

    def _kubelet(self, pod: dict[str, Any]) -> None:
        """Run the pod's only container as a local process; its output becomes the pod's log."""
        key: Key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        container = pod["spec"]["containers"][0]
        image, name = container.get("image", ""), container.get("name", "base")
        scratch = Path(self.scratch or "/tmp") / key[1]
        scratch.mkdir(parents=True, exist_ok=True)
        env = {e["name"]: e.get("value", "") for e in container.get("env") or []}
        env.update(HOME=str(scratch), KERAS_HOME=str(scratch / ".keras"), MPLCONFIGDIR=str(scratch))
        command = [*(container.get("command") or []), *(container.get("args") or [])]
        if command[:1] == ["python"]:
            command[0] = sys.executable
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **env, "PYTHONPATH": str(REPO), **self.extra_env},
            cwd=REPO,
            start_new_session=True,  # its own process group: a kill takes its children too
        )
        started = _now()
        with self._lock:
            self._processes[key] = process
            self.logs[key] = ""
            pod["status"] = {
                "phase": "Running",
                "startTime": started,
                "hostIP": "10.0.0.1",
                "podIP": "10.1.0.7",
                "conditions": [
                    _condition(c) for c in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
                ],
                "containerStatuses": [_container(name, image, running=True)],
            }
        assert process.stdout is not None
        for line in process.stdout:
            with self._lock:
                self.logs[key] += line
        code = process.wait()
        code = 128 - code if code < 0 else code  # killed by signal N: the runtime reports 128 + N
        with self._lock:
            disrupted = pod.get("_disruption")
            terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}
            status: dict[str, Any] = {
                "phase": "Succeeded" if code == 0 and not disrupted else "Failed",
                "startTime": started,
                "conditions": [_condition("PodScheduled"), *([disrupted["condition"]] if disrupted else [])],
                "containerStatuses": [_container(name, image, terminated=terminated)],
            }
            status.update((disrupted or {}).get("status") or {})
            pod["status"] = status
        self._exited[key].set()

    def _disrupt(
        self,
        key: Key,
        *,
        condition: dict[str, str],
        event: dict[str, Any],
        status: dict[str, str] | None = None,
        deleting: bool = True,
        timeout: float,
    ) -> None:
        """DisruptionTarget first, then the event, then the kill; returns once the pod is Failed."""
        disruption = _condition("DisruptionTarget", **condition)
        with self._lock:
            pod = self.pods[key]
            pod["_disruption"] = {"condition": disruption, "status": status}
            pod["status"] = {
                **pod["status"],
                "conditions": [*pod["status"].get("conditions", []), disruption],
            }
            if deleting:
                pod["metadata"] = {
                    **pod["metadata"],
                    "deletionTimestamp": _now(),
                    "deletionGracePeriodSeconds": 0,
                }
            self.events.append(_event(pod, **event))
        self._kill(key)
        if not self._exited[key].wait(timeout):
            raise TimeoutError(f"pod {key[1]}'s process did not end within {timeout} s of SIGKILL")

    def _kill(self, key: Key) -> None:
        process = self._processes.get(key)
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it ended on its own meanwhile
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def _running_key(self, name: str | None, namespace: str) -> Key:
        if name is not None:
            key = (namespace, name)
            if key not in self._processes or self._processes[key].poll() is not None:
                raise LookupError(f"pod {name} is not running")
            return key
        running = [k for k, p in list(self._processes.items()) if k[0] == namespace and p.poll() is None]
        if len(running) != 1:
            raise LookupError(f"expected one running pod in {namespace}, found {[k[1] for k in running]}")
        return running[0]

    def _event_list(self, namespace: str, query: dict[str, list[str]]) -> dict[str, Any]:
        selector = (query.get("fieldSelector") or [""])[0]
        wanted = dict(term.split("=", 1) for term in selector.split(",") if "=" in term)
        with self._lock:
            items = [
                e
                for e in self.events
                if e["metadata"]["namespace"] == namespace
                and wanted.get("involvedObject.name", e["involvedObject"]["name"])
                == e["involvedObject"]["name"]
            ]
        return {"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": items}


def _condition(kind: str, *, reason: str | None = None, message: str | None = None) -> dict[str, Any]:
    condition: dict[str, Any] = {"type": kind, "status": "True", "lastTransitionTime": _now()}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _event(
    pod: dict[str, Any], *, reason: str, type: str, message: str, source: dict[str, str]
) -> dict[str, Any]:
    meta = pod["metadata"]
    stamp = _now()
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}", "namespace": meta["namespace"]},
        "involvedObject": {
            "kind": "Pod",
            "apiVersion": "v1",
            **{k: meta[k] for k in ("name", "namespace", "uid")},
        },
        "reason": reason,
        "type": type,
        "message": message,
        "source": source,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
