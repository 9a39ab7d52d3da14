"""Which code produced an artifact: recorded in every model's metadata for reproducibility."""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

from slipway import __version__


@cache
def code_version() -> str:
    """``SLIPWAY_CODE_VERSION`` (set by image builds), else the git commit, else the package version."""
    if os.environ.get("SLIPWAY_CODE_VERSION"):
        return os.environ["SLIPWAY_CODE_VERSION"]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return f"{__version__}+g{commit}"
    except (OSError, subprocess.SubprocessError):
        return __version__
