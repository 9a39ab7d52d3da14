"""The layout's rules are checked by ruff's banned imports (``*/ruff.toml``), not by memory:
``slipway/`` never imports Airflow, DAG-parse modules never import the API-server plugin.

Each case feeds a one-line module to ``ruff check --stdin-filename``, so ruff applies the
configuration of the folder the file would live in, without writing into the source tree.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).with_name("ruff")


def _banned(path: str, source: str) -> bool:
    done = subprocess.run(
        [str(RUFF), "check", "--no-cache", "--select", "TID251", "--stdin-filename", path, "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode in (0, 1), done.stderr
    return "TID251" in done.stdout


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("slipway/steps/new_step.py", "import airflow\n"),
        ("slipway/release.py", "def f():\n    from airflow.sdk import DAG\n    return DAG\n"),
        ("dags/another_dag.py", "from operators.artifacts_plugin import SlipwayPlugin\n"),
        ("operators/step.py", "from operators.artifacts_plugin import is_servable\n"),
        ("operators/launchers/kubernetes.py", "import operators.artifacts_plugin\n"),
    ],
)
def test_forbidden_imports_are_reported(path: str, source: str) -> None:
    assert _banned(path, source)


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("operators/step.py", "from airflow.sdk import BaseOperator\n"),
        ("dags/retrain.py", "from airflow.sdk import DAG\n"),
        ("operators/artifacts_plugin.py", "from operators.artifacts_plugin import URL_PREFIX\n"),
        ("tests/airflow/test_x.py", "from operators.artifacts_plugin import app\nimport airflow\n"),
        ("slipway/cli.py", "import slipway.results\n"),
    ],
)
def test_allowed_imports_pass(path: str, source: str) -> None:
    assert not _banned(path, source)


def test_our_deprecated_calls_fail_and_third_party_noise_is_targeted() -> None:
    """pyproject's filterwarnings: no blanket ignore of DeprecationWarning."""
    import warnings

    with pytest.raises(DeprecationWarning, match="moved"):
        warnings.warn("this API moved", DeprecationWarning, stacklevel=1)  # attributed to tests.*
    with warnings.catch_warnings(record=True) as seen:  # keeps the filters pytest set from pyproject
        warnings.warn_explicit(
            "__array__ implementation doesn't accept a copy keyword, so passing copy=False failed.",
            DeprecationWarning,
            "core.py",
            172,
            module="keras.src.backend.tensorflow.core",
        )
        warnings.warn_explicit(
            "some library API is going away", DeprecationWarning, "lib.py", 1, module="lib"
        )
    assert [str(w.message) for w in seen] == ["some library API is going away"]  # shown, not hidden
