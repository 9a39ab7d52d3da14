"""An HTTP stand-in for the Kubernetes API server: records requests, plays pod and Job phases.

There is no cluster here, so the real ``kubernetes`` / ``kubernetes_asyncio`` clients and the
provider's operators talk to this threaded server through a kubeconfig pointing at it. It knows
the handful of core/v1 and batch/v1 calls the launchers make (create / read / list / patch /
delete pods, pod logs, events; create / read / delete Jobs and Services) and plays one
*behaviour* per created pod:

* ``run`` - a kubelet in miniature: runs the container's command as a local process with the
  container's env, Pending -> Running -> Succeeded / Failed with its exit code and output as logs;
* ``image_pull`` - stays Pending, container waiting in ImagePullBackOff;
* ``unschedulable`` - stays Pending, PodScheduled False / Unschedulable (no GPU node fits);
* ``oom`` - Failed, container terminated OOMKilled (exit 137);
* ``evicted`` - Failed with reason Evicted (node memory pressure).
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

REPO = Path(__file__).resolve().parents[2]
STAMP = "2026-01-01T00:00:00.000000000Z"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


@dataclass
class KubeStandIn:
    behaviour: str = "run"
    requests: list[Recorded] = field(default_factory=list)
    pods: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    jobs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    services: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    logs: dict[tuple[str, str], str] = field(default_factory=dict)
    scratch: Path | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self, method: str) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                stand_in.requests.append(Recorded(method, url.path, parse_qs(url.query), body))
                status, payload, content_type = stand_in.handle(method, url.path, parse_qs(url.query), body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PATCH(self) -> None:
                self._serve("PATCH")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> KubeStandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "standin", "cluster": {"server": self.url}}],
                    "users": [{"name": "tester", "user": {"token": "standin"}}],
                    "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "tester"}}],
                    "current-context": "standin",
                }
            )
        )
        return path

    def created(self, kind: str) -> list[dict[str, Any]]:
        """Bodies of the create calls for ``pods`` / ``jobs`` / ``services``."""
        return [r.body for r in self.requests if r.method == "POST" and r.path.endswith(f"/{kind}")]

    # ------------------------------------------------------------------ routing

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any, str]:
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/(pods|events|services)(?:/([^/]+))?(?:/(log))?", path)
        if m:
            namespace, kind, name, sub = m.groups()
            if kind == "events":
                return (
                    200,
                    {"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": []},
                    "application/json",
                )
            if kind == "services":
                return self._crud(self.services, "Service", "v1", method, namespace, name, body)
            if sub == "log":
                text = self.logs.get((namespace, name), "")
                lines = "".join(f"{STAMP} {line}\n" for line in text.splitlines())
                return 200, lines.encode(), "text/plain"
            if method == "GET" and name is None:
                return 200, self._list_pods(namespace, query), "application/json"
            if method == "POST":
                return self._create_pod(namespace, body)
            return self._crud(self.pods, "Pod", "v1", method, namespace, name, body)
        m = re.fullmatch(r"/apis/batch/v1/namespaces/([^/]+)/jobs(?:/([^/]+))?(?:/status)?", path)
        if m:
            namespace, name = m.groups()
            answer = self._crud(self.jobs, "Job", "batch/v1", method, namespace, name, body)
            if method == "POST" and answer[0] == 201:
                self._start_job_pods(namespace, answer[1])
            return answer
        return 404, _status(404, f"no route {method} {path}"), "application/json"

    def _crud(self, table, kind, api_version, method, namespace, name, body) -> tuple[int, Any, str]:
        with self._lock:
            if method == "POST":
                obj = copy.deepcopy(body)
                obj.setdefault("metadata", {}).setdefault("namespace", namespace)
                obj["metadata"].setdefault("uid", str(uuid.uuid4()))
                obj["metadata"]["resourceVersion"] = "1"
                obj.update({"kind": kind, "apiVersion": api_version})
                table[(namespace, obj["metadata"]["name"])] = obj
                return 201, obj, "application/json"
            obj = table.get((namespace, name))
            if obj is None:
                return 404, _status(404, f'{kind.lower()}s "{name}" not found'), "application/json"
            if method == "GET":
                return 200, self._refresh(obj), "application/json"
            if method == "PATCH":
                labels = ((body or {}).get("metadata") or {}).get("labels") or {}
                obj["metadata"].setdefault("labels", {}).update(labels)
                return 200, obj, "application/json"
            if method == "DELETE":
                del table[(namespace, name)]
                return 200, _status(200, "deleted", status="Success"), "application/json"
        return 405, _status(405, "method not allowed"), "application/json"

    def _list_pods(self, namespace: str, query: dict[str, list[str]]) -> dict[str, Any]:
        selector = (query.get("labelSelector") or [""])[0]
        items = [
            self._refresh(p)
            for (ns, _), p in list(self.pods.items())
            if ns == namespace and _matches(p["metadata"].get("labels") or {}, selector)
        ]
        return {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}

    # ------------------------------------------------------------------ pod behaviours

    def _start_job_pods(self, namespace: str, job: dict[str, Any]) -> None:
        """The Job controller's part: one pod per completion index, from the template."""
        template = job["spec"]["template"]
        name = job["metadata"]["name"]
        for index in range(int(job["spec"].get("parallelism") or 1)):
            meta = copy.deepcopy(template.get("metadata") or {})
            meta["name"] = f"{name}-{index}-{uuid.uuid4().hex[:5]}"
            meta.setdefault("labels", {}).update(
                {"job-name": name, "batch.kubernetes.io/job-completion-index": str(index)}
            )
            spec = {**copy.deepcopy(template["spec"]), "hostname": f"{name}-{index}"}
            self._create_pod(namespace, {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})

    def _create_pod(self, namespace: str, body: dict[str, Any]) -> tuple[int, Any, str]:
        status, pod, ctype = self._crud(self.pods, "Pod", "v1", "POST", namespace, None, body)
        pod["status"] = {"phase": "Pending"}
        pod["_behaviour"] = self.behaviour
        if self.behaviour == "run":
            threading.Thread(target=self._run, args=(pod,), daemon=True).start()
        return status, {k: v for k, v in pod.items() if not k.startswith("_")}, ctype

    def _refresh(self, obj: dict[str, Any]) -> dict[str, Any]:
        behaviour = obj.get("_behaviour")
        container = ((obj.get("spec") or {}).get("containers") or [{}])[0]
        name, image = container.get("name", "base"), container.get("image", "")
        if behaviour == "image_pull":
            obj["status"] = {
                "phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "True"}],
                "containerStatuses": [
                    _container(name, image, waiting={
                        "reason": "ImagePullBackOff",
                        "message": f'Back-off pulling image "{image}": not found',
                    })
                ],
            }  # fmt: skip
        elif behaviour == "unschedulable":
            obj["status"] = {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
                    }
                ],
            }
        elif behaviour == "oom":
            obj["status"] = {
                "phase": "Failed",
                "containerStatuses": [
                    _container(name, image, terminated={"exitCode": 137, "reason": "OOMKilled"})
                ],
            }
        elif behaviour == "evicted":
            obj["status"] = {
                "phase": "Failed",
                "reason": "Evicted",
                "message": "The node was low on resource: memory. Threshold quantity: 100Mi.",
            }
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    def _run(self, pod: dict[str, Any]) -> None:
        """Run the pod's only container as a local process, as a kubelet would run it."""
        container = pod["spec"]["containers"][0]
        env = {e["name"]: e.get("value", "") for e in container.get("env") or []}
        scratch = Path(self.scratch or "/tmp") / pod["metadata"]["name"]
        scratch.mkdir(parents=True, exist_ok=True)
        env.update(HOME=str(scratch), KERAS_HOME=str(scratch / ".keras"), MPLCONFIGDIR=str(scratch))
        process_env = {**os.environ, **env, "PYTHONPATH": str(REPO)}
        command = [*(container.get("command") or []), *(container.get("args") or [])]
        if command[:1] == ["python"]:
            command[0] = sys.executable
        image, name = container.get("image", ""), container.get("name", "base")
        with self._lock:
            pod["status"] = {"phase": "Running", "containerStatuses": [_container(name, image, running=True)]}
        done = subprocess.run(command, capture_output=True, text=True, env=process_env, cwd=REPO)
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        with self._lock:
            self.logs[key] = done.stdout + done.stderr
            terminated = {
                "exitCode": done.returncode,
                "reason": "Completed" if done.returncode == 0 else "Error",
            }
            pod["status"] = {
                "phase": "Succeeded" if done.returncode == 0 else "Failed",
                "containerStatuses": [_container(name, image, terminated=terminated)],
            }


def _container(name: str, image: str, *, waiting=None, terminated=None, running=False) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if waiting:
        state["waiting"] = waiting
    if terminated:
        state["terminated"] = {
            "startedAt": "2026-01-01T00:00:00Z",
            "finishedAt": "2026-01-01T00:00:01Z",
            **terminated,
        }
    if running:
        state["running"] = {"startedAt": "2026-01-01T00:00:00Z"}
    return {
        "name": name,
        "image": image,
        "imageID": "",
        "ready": running,
        "restartCount": 0,
        "started": running,
        "state": state,
        "lastState": {},
    }


def _status(code: int, message: str, status: str = "Failure") -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": status,
        "message": message,
        "code": code,
    }


def _matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key) != value.lstrip("="):
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True
