"""Run the README's ``curl`` lines (section "Starting a run") against a live Airflow.

The README is written for ``make airflow`` on localhost:8080 and the reference pipeline; the
test swaps in its own server, home folder, DAG, asset and partition, and nothing else, so a
line that stops working in the README fails here.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.live.airflow_server import SYSTEM_PATH, AirflowServer

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_blocks() -> dict[str, str]:
    """Bash blocks of the README by their first line (a ``# Title`` comment)."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    return {block.splitlines()[0].lstrip("# ").strip(): block for block in blocks if block.startswith("#")}


def run_readme(
    server: AirflowServer,
    titles: list[str],
    replacements: dict[str, str],
    *,
    echo: str = "",
    env: dict[str, str] | None = None,
) -> list[str]:
    """Run the named blocks in one ``bash -euo pipefail``; returns stdout's lines."""
    blocks = readme_blocks()
    script = "\n".join(blocks[title] for title in titles)
    swaps = {
        "http://localhost:8080": server.url,
        ".airflow/": f"{server.home}/",
        **replacements,
    }
    for old, new in swaps.items():
        assert old in script, f"README block(s) {titles} no longer contain {old!r}"
        script = script.replace(old, new)
    if echo:
        script += f"\necho {echo}\n"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={"PATH": SYSTEM_PATH, "HOME": str(server.home), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"README lines failed ({done.returncode}):\n{script}\n{done.stderr}"
    return done.stdout.splitlines()
