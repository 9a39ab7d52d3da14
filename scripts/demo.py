"""``make demo``: run the Fashion-MNIST retraining DAG end to end, then say what happened.

The DAG runs with ``dag.test()`` in a child process on the embedded defaults (SQLite metadata DB
in ``.airflow/``, artifact store in ``.slipway/store``, steps as local subprocesses). Its full
log goes to ``.slipway/logs/``; the terminal gets the task transitions, the training curve, and
the run summary built from what the steps stored. Then ``scripts/canary_demo.py`` shows canary
rollouts (each step's decision and numbers) on a local sandbox.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ROOT / "dags" / "pipelines" / "fashion_mnist.yaml"
DAG_ID = "retrain_fashion_mnist"

# Messages of the DAG run log worth showing live (Airflow's own decoration is cut off).
_PROGRESS = re.compile(
    r"(epoch \d+/\d+ .*?|gate: .*?|registered .*?|champion of .*?|validation (?:PASSED|FAILED).*?)"
    r"(?:\s+\[airflow|\s*$)"
)


def main() -> int:
    log_dir = ROOT / ".slipway" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"demo-{time.strftime('%Y%m%dT%H%M%S')}.log"
    print(f"Slipway demo: running {DAG_ID} with dag.test() on the embedded defaults")
    print(f"  full Airflow log: {log_path}")
    started = time.monotonic()
    run_id, state = None, "unknown"
    with log_path.open("w") as log_file:
        child = subprocess.Popen(
            [sys.executable, "-m", "scripts.run_dag", DAG_ID],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert child.stdout is not None
        for line in child.stdout:
            log_file.write(line)
            if line.startswith("SLIPWAY_DAG_RUN "):
                _, run_id, state = line.split()
                continue
            match = _PROGRESS.search(line)
            if match:
                print("  " + match.group(1).strip(), flush=True)
        code = child.wait()
    elapsed = time.monotonic() - started
    print(f"DAG run {run_id} finished: {state} in {elapsed:.0f}s")
    if run_id:
        subprocess.run(
            [sys.executable, "-m", "slipway", "summary", "--config", str(PIPELINE), "--run-id", run_id],
            cwd=ROOT,
            check=False,
        )
    if code != 0:
        print(f"the run did not succeed; see {log_path}", file=sys.stderr)
        return code
    # The canary rollout, shown on a local sandbox of servers, router and Prometheus.
    return subprocess.run([sys.executable, "-m", "scripts.canary_demo"], cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
