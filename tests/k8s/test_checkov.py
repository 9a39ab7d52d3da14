"""checkov passes on the Dockerfiles and the rendered overlays; each deliberate skip is inline
(``# checkov:skip=`` in a Dockerfile, ``checkov.io/skipN`` annotations in a manifest) with its reason.

checkov lives in its own venv (``make tools``: ``.tools-venv``) because its pins conflict with
the main lock; ``SLIPWAY_CHECKOV`` may point at another checkov binary.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECKOV = Path(os.environ.get("SLIPWAY_CHECKOV", REPO / ".tools-venv" / "bin" / "checkov"))

pytestmark = pytest.mark.skipif(not CHECKOV.exists(), reason="checkov not installed: run `make tools`")


def _checkov(directory: Path, framework: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    return subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(directory),
            "--framework",
            framework,
            "--compact",
            "--quiet",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_dockerfiles_pass_checkov() -> None:
    done = _checkov(REPO / "docker", "dockerfile")
    assert done.returncode == 0, done.stdout[-4000:]
    assert "Failed checks: 0" in done.stdout


def test_rendered_overlays_pass_checkov(tmp_path: Path) -> None:
    kubectl = Path(sys.executable).parent / "kubectl"
    for overlay in ("local", "gpu"):
        rendered = subprocess.run(
            [str(kubectl), "kustomize", str(REPO / "k8s" / "overlays" / overlay)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        (tmp_path / f"{overlay}.yaml").write_text(rendered)
    done = _checkov(tmp_path, "kubernetes")
    assert done.returncode == 0, done.stdout[-4000:]
    assert "Failed checks: 0" in done.stdout
