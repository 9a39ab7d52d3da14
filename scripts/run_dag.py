"""Run one DAG once with ``dag.test()`` (no scheduler needed) and report the run's outcome.

Usage: ``python -m scripts.run_dag DAG_ID [--conf JSON]``. Prints ``SLIPWAY_DAG_RUN <run_id> <state>``
as its last line and exits non-zero unless the run succeeded.
"""

from __future__ import annotations

import argparse
import json
import sys

from airflow.dag_processing.dagbag import DagBag


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("dag_id")
    parser.add_argument("--conf", default=None, help="run conf (Params) as JSON")
    args = parser.parse_args()
    bag = DagBag()
    if bag.import_errors:
        for path, error in bag.import_errors.items():
            print(f"error: cannot import {path}: {error}", file=sys.stderr)
        return 1
    dag = bag.get_dag(args.dag_id)
    if dag is None:
        print(f"error: no DAG {args.dag_id!r} in {bag.dag_folder}", file=sys.stderr)
        return 1
    run = dag.test(run_conf=json.loads(args.conf) if args.conf else None)
    print(f"SLIPWAY_DAG_RUN {run.run_id} {run.state}", flush=True)
    return 0 if str(run.state) == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
