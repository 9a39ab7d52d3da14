"""``slipway serve`` and ``slipway route`` as real processes on 127.0.0.1.

One tiny registered model (the reference MLP layers on 8x8 inputs) is served for the module:
answers are compared with the SavedModel's, a hypothesis fuzz sends thousands of malformed
requests (only 4xx, server alive after), and the router splits traffic by weight, changes weights
through its admin API and names an unreachable backend.
"""

from __future__ import annotations

import collections
import http.client
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slipway.serving.router import LocalRouterClient, RouterError
from tests.serving.servers import free_port, get, process, register_tiny_model, send

pytestmark = pytest.mark.slow

PREDICT = "/v1/models/digits:predict"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("serving")
    store_url = (root / "store").as_uri()
    model_dir = register_tiny_model(store_url)
    port = free_port()
    args = [
        "serve",
        "--store-url",
        store_url,
        "--model",
        "digits",
        "--version",
        "champion",
        "--port",
        str(port),
    ]
    env = {"SLIPWAY_SERVING_CACHE": str(root / "cache")}
    url = f"http://127.0.0.1:{port}"
    with process([*args, "--max-batch-wait-ms", "2"], f"{url}/readyz", env) as proc:
        yield {"url": url, "model_dir": model_dir, "proc": proc}


def _predict(url: str, instances: np.ndarray, path: str = PREDICT) -> np.ndarray:
    status, body, _ = send(url + path, orjson.dumps({"instances": instances.tolist()}))
    assert status == 200, body
    return np.asarray(orjson.loads(body)["predictions"], dtype=np.float32)


def test_answers_are_the_saved_models(served: dict[str, Any]) -> None:
    import tensorflow as tf

    signature = tf.saved_model.load(str(served["model_dir"])).signatures["serving_default"]
    rng = np.random.default_rng(1)
    requests = [rng.uniform(0, 1, size=(int(rng.integers(1, 6)), 8, 8)).astype(np.float32) for _ in range(60)]
    with ThreadPoolExecutor(8) as pool:  # concurrent, so the server coalesces them into batches
        answers = list(pool.map(lambda x: _predict(served["url"], x), requests))
    for x, got in zip(requests, answers, strict=True):
        expected = signature(inputs=tf.constant(x))["output_0"].numpy()
        np.testing.assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    columnar = orjson.loads(send(served["url"] + PREDICT, orjson.dumps({"inputs": requests[0].tolist()}))[1])
    np.testing.assert_array_equal(np.asarray(columnar["outputs"], dtype=np.float32), answers[0])
    status, body = get(served["url"] + "/v1/models/digits/labels/champion")
    assert status == 200 and orjson.loads(body)["model_version_status"][0]["state"] == "AVAILABLE"
    status, body = get(served["url"] + "/v1/models/digits/versions/1/metadata")
    inputs = orjson.loads(body)["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]
    assert inputs["inputs"]["tensor_shape"]["dim"] == [{"size": "-1"}, {"size": "8"}, {"size": "8"}]


# --------------------------------------------------------------------------- fuzz

VALID = [[0.5] * 8 for _ in range(8)]
WRONG_PATHS = [
    "/v1/models/other:predict",
    "/v1/models/digits/versions/2:predict",
    "/v1/models/digits/versions/-1:predict",
    "/v1/models/digits/labels/canary:predict",
    "/v1/models/digits:regress",
    "/v1/models/digits/metadata:predict",
    "/v1/models/digits/versions/1/labels/x:predict",
    "/v2/models/digits:predict",
]
WRONG_TYPES = ["text/plain", "application/x-www-form-urlencoded", "image/png", "xml", "multipart/form-data"]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=30,
)
not_a_number = (
    st.none() | st.booleans() | st.text(max_size=5) | st.lists(st.integers(-5, 5), max_size=3) | st.just({})
)


@st.composite
def broken_instance(draw: st.DrawFn) -> Any:
    """A valid 8x8 instance with one thing wrong: a cell that is not a number, or a row too short/long."""
    rows = [list(row) for row in VALID]
    r, c = draw(st.integers(0, 7)), draw(st.integers(0, 7))
    if draw(st.booleans()):
        rows[r][c] = draw(not_a_number)
    else:
        rows[r] = rows[r][: draw(st.integers(0, 7))] if draw(st.booleans()) else rows[r] + [0.0]
    return rows


@st.composite
def malformed(draw: st.DrawFn) -> tuple[str, str, bytes, str]:
    """(method, path, body, content type) of a request the server must refuse with a 4xx."""
    kind = draw(
        st.sampled_from(["bytes", "json", "instances", "inputs", "broken", "values", "where", "type"])
    )
    good = orjson.dumps({"instances": [VALID]})
    if kind == "bytes":
        body = draw(st.binary(max_size=200))
        return "POST", PREDICT, body if body.strip() else b"{", "application/json"
    if kind == "json":  # any JSON that is not an object with a usable field
        value = draw(
            json_values.filter(lambda v: not isinstance(v, dict) or not ({"instances", "inputs"} & set(v)))
        )
        return "POST", PREDICT, orjson.dumps(value), "application/json"
    if kind in ("instances", "inputs"):  # the right field with any other value
        return "POST", PREDICT, orjson.dumps({kind: draw(json_values)}), "application/json"
    if kind == "broken":
        body = {"instances": [VALID, draw(broken_instance())]}
        return "POST", PREDICT, orjson.dumps(body), "application/json"
    if kind == "values":  # non-finite numbers written as JSON or too big for float32
        token = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e39", b"-3.5e38", b"1e400"]))
        return "POST", PREDICT, good.replace(b"0.5", token, 1), "application/json"
    if kind == "where":  # unknown model, version, label, verb or method
        path = draw(st.sampled_from(WRONG_PATHS))
        method = draw(st.sampled_from(["POST", "PUT", "DELETE"]))
        return method, path, good, "application/json"
    content_type = draw(
        st.sampled_from(["text/plain", "application/x-www-form-urlencoded", "image/png", "xml"])
    )
    return "POST", PREDICT, good, content_type


class _Client:
    """One keep-alive connection, reopened when the server closes it (as after a 413)."""

    def __init__(self, url: str) -> None:
        self.host, self.port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(self.host, int(self.port), timeout=10)

    def request(self, method: str, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        for attempt in range(2):
            try:
                self.conn.request(method, path, body, {"content-type": content_type})
                answer = self.conn.getresponse()
                return answer.status, answer.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, int(self.port), timeout=10)
                if attempt:
                    raise
        raise AssertionError("unreachable")


FUZZ_EXAMPLES = 2000


def test_fuzzed_malformed_requests_only_get_4xx_and_the_server_lives(served: dict[str, Any]) -> None:
    client = _Client(served["url"])
    outcomes: collections.Counter[int] = collections.Counter()

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(malformed())
    def one(request: tuple[str, str, bytes, str]) -> None:
        status, body = client.request(*request)
        outcomes[status] += 1
        assert 400 <= status < 500, (request, status, body)
        assert isinstance(orjson.loads(body)["error"], str)

    one()
    # every wrong place and content type, not left to the draw
    good = orjson.dumps({"instances": [VALID]})
    for path in WRONG_PATHS:
        for method in ("POST", "PUT", "DELETE", "GET"):
            status, body = client.request(method, path, good, "application/json")
            outcomes[status] += 1
            assert 400 <= status < 500 and orjson.loads(body)["error"], (method, path, status)
    for content_type in WRONG_TYPES:
        status, body = client.request("POST", PREDICT, good, content_type)
        outcomes[status] += 1
        assert status == 415 and content_type in orjson.loads(body)["error"]
    # oversized bodies, by Content-Length and by bytes actually sent
    status, body = client.request("POST", PREDICT, b"[" * (8 * 1024 * 1024 + 1), "application/json")
    outcomes[status] += 1
    assert status == 413 and b"exceeds the limit" in body
    print(f"\nfuzz: {sum(outcomes.values())} malformed requests, outcomes {dict(sorted(outcomes.items()))}")
    assert sum(outcomes.values()) >= FUZZ_EXAMPLES
    assert served["proc"].poll() is None
    assert get(served["url"] + "/healthz")[0] == 200
    assert _predict(served["url"], np.zeros((2, 8, 8), dtype=np.float32)).shape == (2, 10)
    scraped = get(served["url"] + "/metrics")[1].decode()
    assert 'code="500"' not in scraped
    assert 'slipway_serving_requests_total{code="400",model="digits",variant="stable",version="1"}' in scraped


# --------------------------------------------------------------------------- router


def test_router_splits_by_weight_and_changes_weights_at_run_time(served: dict[str, Any]) -> None:
    port, dead = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    backends = [f"stable={served['url']}", f"canary={served['url']}", f"dead=http://127.0.0.1:{dead}"]
    args = ["route", "--port", str(port), "--weights", "stable=3,canary=1"]
    for backend in backends:
        args += ["--backend", backend]
    x = np.random.default_rng(2).uniform(0, 1, size=(2, 8, 8)).astype(np.float32)
    direct = _predict(served["url"], x)
    with process(args, f"{url}/readyz"):
        seen = collections.Counter()
        for _ in range(40):
            status, body, headers = send(url + PREDICT, orjson.dumps({"instances": x.tolist()}))
            assert status == 200
            np.testing.assert_array_equal(
                np.asarray(orjson.loads(body)["predictions"], dtype=np.float32), direct
            )
            seen[headers["x-slipway-backend"]] += 1
        assert seen == {"stable": 30, "canary": 10}  # smooth weighted round-robin: exact shares

        admin = LocalRouterClient(url)
        assert admin.get_weights() == {"stable": 3, "canary": 1, "dead": 0}
        assert admin.set_weights({"canary": 1}) == {"stable": 0, "canary": 1, "dead": 0}
        assert {
            send(url + PREDICT, orjson.dumps({"instances": x.tolist()}))[2]["x-slipway-backend"]
            for _ in range(5)
        } == {"canary"}
        for bad, words in [
            ({"nope": 1}, "unknown backend"),
            ({"stable": -1}, "integer from 0"),
            ({"stable": 0}, "above 0"),
        ]:
            with pytest.raises(RouterError, match=words):
                admin.set_weights(bad)
        admin.set_weights({"dead": 1})
        status, body, headers = send(url + PREDICT, orjson.dumps({"instances": x.tolist()}))
        assert (status, headers["x-slipway-backend"]) == (502, "dead")
        assert "backend 'dead'" in orjson.loads(body)["error"]
        # 4xx of the backend pass through unchanged
        admin.set_weights({"stable": 1})
        status, body, _ = send(url + PREDICT, b"{")
        assert status == 400 and "malformed JSON" in orjson.loads(body)["error"]

        scraped = get(url + "/metrics")[1].decode()
        assert 'slipway_router_requests_total{backend="stable",code="200"} 30.0' in scraped
        assert 'slipway_router_requests_total{backend="dead",code="502"} 1.0' in scraped
        assert 'slipway_router_backend_weight{backend="stable"} 1.0' in scraped
        assert 'slipway_router_request_duration_seconds_count{backend="canary"} 15.0' in scraped


def test_router_admin_needs_the_token_when_one_is_set(served: dict[str, Any]) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [
        "route",
        "--port",
        str(port),
        "--backend",
        f"stable={served['url']}",
        "--backend",
        f"canary={served['url']}",
    ]
    with process(args, f"{url}/readyz", env={"SLIPWAY_ROUTER_ADMIN_TOKEN": "s3cret"}):
        status, body, _ = send(url + "/admin/weights", b'{"canary": 1}', method="PUT")
        assert status == 403 and "bearer token" in orjson.loads(body)["error"]
        with pytest.raises(RouterError, match="403"):
            LocalRouterClient(url, token="wrong").set_weights({"canary": 1})
        assert LocalRouterClient(url, token="s3cret").set_weights({"canary": 1}) == {"stable": 0, "canary": 1}
        assert math.isclose(
            float(get(url + "/metrics")[1].decode().split('backend_weight{backend="canary"} ')[1].split()[0]),
            1.0,
        )


def test_model_dir_is_a_verified_copy(served: dict[str, Any]) -> None:
    assert (Path(served["model_dir"]) / "model.keras").exists()
