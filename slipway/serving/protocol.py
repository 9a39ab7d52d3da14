"""TF Serving's REST predict protocol: parse and check a request body, format the answer.

Pure functions on bytes and NumPy arrays (no TensorFlow, no server), so every kind of bad request
is unit-testable and the server's hot path is one call. The format is TF Serving's
(https://www.tensorflow.org/tfx/serving/api_rest):

* row format ``{"instances": [x0, x1, ...]}`` answered with ``{"predictions": [...]}``; an instance
  may also be ``{"<input name>": x}``;
* columnar format ``{"inputs": X}`` or ``{"inputs": {"<input name>": X}}`` answered with
  ``{"outputs": [...]}``;
* optional ``"signature_name"`` (only ``serving_default`` exists);
* errors ``{"error": "..."}``.

Every problem raises ``RequestError`` with a 4xx status and a message naming it: malformed JSON,
a wrong top-level shape, unknown fields, a wrong instance shape, non-numeric values (strings,
booleans, null, ragged nesting), NaN or infinite values (also numbers too large for float32), and
too many instances. Values are float32, like the SavedModel's signature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson

SIGNATURE_NAME = "serving_default"
_FIELDS = frozenset({"instances", "inputs", "signature_name"})


class RequestError(Exception):
    """A request the server refuses; ``status`` is the HTTP code (always 4xx or 503)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class InputSpec:
    """The one input tensor of the served signature (name and per-instance shape)."""

    name: str
    shape: tuple[int, ...]

    def describe(self) -> str:
        return f"input {self.name!r} of shape {list(self.shape)} (float32)"


@dataclass(frozen=True)
class PredictRequest:
    instances: np.ndarray  # float32, shape (n, *InputSpec.shape)
    columnar: bool  # answered with "outputs" instead of "predictions"


def parse_predict(body: bytes, spec: InputSpec, max_instances: int) -> PredictRequest:
    """Check a predict body against the input spec; raises ``RequestError`` naming the problem."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, f"malformed JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise RequestError(
            400, f"the body must be a JSON object with 'instances' or 'inputs', got {_kind(doc)}"
        )
    unknown = sorted(set(doc) - _FIELDS)
    if unknown:
        raise RequestError(
            400, f"unknown field(s) {unknown[:5]}: a predict request has 'instances' or 'inputs'"
        )
    signature = doc.get("signature_name", SIGNATURE_NAME)
    if signature != SIGNATURE_NAME:
        raise RequestError(
            400, f"unknown signature_name {str(signature)[:100]!r}: this model has only {SIGNATURE_NAME!r}"
        )
    if ("instances" in doc) == ("inputs" in doc):
        raise RequestError(
            400, "the request must have exactly one of 'instances' (row) or 'inputs' (columnar)"
        )
    if "instances" in doc:
        request = PredictRequest(_rows(doc["instances"], spec, max_instances), columnar=False)
    else:
        request = PredictRequest(_columns(doc["inputs"], spec, max_instances), columnar=True)
    # NumPy turns true/false among numbers into 1.0/0.0, so booleans get an exact look - only when
    # the body has an "r" or an "l" (true, false), which numbers and the plain keys never have.
    if (b"r" in body or b"l" in body) and _holds_bool(doc.get("instances", doc.get("inputs"))):
        raise RequestError(400, f"the request holds booleans; the model takes {spec.describe()}")
    return request


def _holds_bool(value: object) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, list):
        return any(_holds_bool(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_bool(item) for item in value.values())
    return False


def _rows(instances: object, spec: InputSpec, max_instances: int) -> np.ndarray:
    if not isinstance(instances, list):
        raise RequestError(400, f"'instances' must be a list of instances, got {_kind(instances)}")
    _check_count(len(instances), max_instances, "instances")
    if any(isinstance(item, dict) for item in instances):
        named = []
        for i, item in enumerate(instances):
            if not isinstance(item, dict) or set(item) != {spec.name}:
                got = sorted(item)[:5] if isinstance(item, dict) else _kind(item)
                raise RequestError(
                    400, f"instance {i}: a named instance must be {{{spec.name!r}: ...}}, got {got}"
                )
            named.append(item[spec.name])
        instances = named
    return _tensor(instances, spec, "instances")


def _columns(inputs: object, spec: InputSpec, max_instances: int) -> np.ndarray:
    if isinstance(inputs, dict):
        if set(inputs) != {spec.name}:
            raise RequestError(
                400, f"'inputs' names {sorted(inputs)[:5]}, but the model has one input {spec.name!r}"
            )
        inputs = inputs[spec.name]
    if not isinstance(inputs, list):
        raise RequestError(400, f"'inputs' must be a list (batch of {spec.describe()}), got {_kind(inputs)}")
    _check_count(len(inputs), max_instances, "inputs")
    return _tensor(inputs, spec, "inputs")


def _check_count(count: int, max_instances: int, field: str) -> None:
    if count == 0:
        raise RequestError(400, f"'{field}' is empty: send at least one instance")
    if count > max_instances:
        raise RequestError(
            413, f"too many instances in '{field}': {count} > {max_instances} allowed per request"
        )


def _tensor(values: list[object], spec: InputSpec, field: str) -> np.ndarray:
    try:
        array = np.asarray(values)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise RequestError(
            400, f"'{field}' is not a rectangular array of numbers (ragged nesting or mixed types)"
        ) from None
    if array.dtype.kind not in "iuf":
        what = {"b": "booleans", "U": "strings", "S": "strings"}.get(
            array.dtype.kind, "non-numeric values (null, objects, ragged nesting or numbers out of range)"
        )
        raise RequestError(400, f"'{field}' holds {what}; the model takes {spec.describe()}")
    if array.shape[1:] != spec.shape:
        raise RequestError(
            400,
            f"instance shape {list(array.shape[1:])} does not match the model's {spec.describe()}",
        )
    with np.errstate(over="ignore", invalid="ignore"):
        result = array.astype(np.float32)
    finite = np.isfinite(result).reshape(len(result), -1).all(axis=1)
    if not finite.all():
        bad = int(np.argmin(finite))
        raise RequestError(
            400, f"instance {bad} holds NaN or infinite values (or numbers too large for float32)"
        )
    return result


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def predict_response(outputs: np.ndarray, columnar: bool) -> bytes:
    """TF Serving's answer for a single-output signature: float32 values as JSON numbers."""
    return orjson.dumps(
        {"outputs" if columnar else "predictions": outputs}, option=orjson.OPT_SERIALIZE_NUMPY
    )


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})
