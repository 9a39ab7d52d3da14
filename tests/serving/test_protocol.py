"""TF Serving's predict protocol: every kind of bad request is a 4xx naming the problem."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from slipway.serving.protocol import InputSpec, RequestError, parse_predict, predict_response

SPEC = InputSpec(name="inputs", shape=(2, 3))
ONE = [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


def _parse(doc: object, max_instances: int = 4) -> np.ndarray:
    body = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    return parse_predict(body, SPEC, max_instances).instances


def test_row_columnar_and_named_forms_give_the_same_tensor() -> None:
    expected = np.array([ONE, ONE], dtype=np.float32)
    for doc in (
        {"instances": [ONE, ONE]},
        {"instances": [{"inputs": ONE}, {"inputs": ONE}], "signature_name": "serving_default"},
        {"inputs": [ONE, ONE]},
        {"inputs": {"inputs": [ONE, ONE]}},
    ):
        request = parse_predict(orjson.dumps(doc), SPEC, 4)
        assert request.instances.dtype == np.float32
        np.testing.assert_array_equal(request.instances, expected)
        assert request.columnar == ("inputs" in doc)
    assert _parse({"instances": [[[1, 2, 3], [4, 5, 6]]]}).dtype == np.float32  # integers are numbers


def test_answer_format() -> None:
    out = np.array([[0.25, 0.75]], dtype=np.float32)
    assert orjson.loads(predict_response(out, columnar=False)) == {"predictions": [[0.25, 0.75]]}
    assert orjson.loads(predict_response(out, columnar=True)) == {"outputs": [[0.25, 0.75]]}


BAD = [
    (b"{not json", 400, "malformed JSON"),
    (b"", 400, "malformed JSON"),
    (b"NaN", 400, "malformed JSON"),
    ([ONE], 400, "JSON object"),
    ({"instances": [ONE], "extra": 1}, 400, "unknown field"),
    ({"instances": [ONE], "inputs": [ONE]}, 400, "exactly one of"),
    ({}, 400, "exactly one of"),
    ({"instances": [ONE], "signature_name": "other"}, 400, "signature_name"),
    ({"instances": ONE[0][0]}, 400, "must be a list"),
    ({"instances": []}, 400, "is empty"),
    ({"instances": [ONE] * 5}, 413, "too many instances"),
    ({"inputs": [ONE] * 5}, 413, "too many instances"),
    ({"instances": [[1.0, 2.0, 3.0]]}, 400, "instance shape [3]"),
    ({"instances": [[ONE]]}, 400, "instance shape [1, 2, 3]"),
    ({"instances": [ONE, [[1.0, 2.0]]]}, 400, "rectangular"),
    ({"instances": [[["a", "b", "c"], ["d", "e", "f"]]]}, 400, "strings"),
    ({"instances": [[["1", "2", "3"], ["4", "5", "6"]]]}, 400, "strings"),
    ({"instances": [[[True, False, True], [True, True, True]]]}, 400, "booleans"),
    ({"instances": [[[False, 1.0, 2.0], [3.0, 4.0, 5.0]]]}, 400, "booleans"),
    ({"inputs": {"inputs": [[[1, 2, 3], [4, 5, True]]]}}, 400, "booleans"),
    ({"instances": [[[None, 1.0, 2.0], [3.0, 4.0, 5.0]]]}, 400, "non-numeric"),
    ({"instances": [[[{}, 1.0, 2.0], [3.0, 4.0, 5.0]]]}, 400, "non-numeric"),
    (b'{"instances": [[[1' + b"0" * 60 + b", 1, 2], [3, 4, 5]]]}", 400, "too large for float32"),
    (b'{"instances": [[[1e39, 1, 2], [3, 4, 5]]]}', 400, "too large for float32"),
    (b'{"instances": [[[0, 1, 2], [3, 4, 5]], [[1e999, 1, 2], [3, 4, 5]]]}', 400, "infinity"),
    (b'{"instances": [[[0, 1, 2], [3, 4, 5]], [[1e300, 1, 2], [3, 4, 5]]]}', 400, "instance 1"),
    ({"instances": [{"other": ONE}]}, 400, "named instance"),
    ({"inputs": {"other": [ONE]}}, 400, "one input 'inputs'"),
    ({"inputs": 3}, 400, "must be a list"),
]


@pytest.mark.parametrize(("doc", "status", "words"), BAD, ids=range(len(BAD)))
def test_bad_requests_are_4xx_naming_the_problem(doc: object, status: int, words: str) -> None:
    with pytest.raises(RequestError) as caught:
        _parse(doc)
    assert caught.value.status == status
    assert words in caught.value.message
