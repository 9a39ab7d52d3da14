"""Run by test_statsd_mapping.py in a subprocess: DAG runs through Airflow's real code with StatsD on.

The scheduler initialises Airflow's server-side metrics before it runs DAG runs; ``dag.test()`` in
a plain script does not, so this script makes the same ``stats.initialize`` call first. Then one
run succeeds and one fails, and DagRun.update_state emits ``dagrun.duration.<state>`` exactly as
it does under the scheduler. Usage: python statsd_probe.py DAG_FILE
"""

from __future__ import annotations

import sys

from airflow._shared.observability.metrics import stats
from airflow.configuration import conf
from airflow.dag_processing.dagbag import DagBag
from airflow.observability.metrics import stats_utils


def main() -> int:
    stats.initialize(
        factory=stats_utils.get_stats_factory(),
        export_legacy_names=conf.getboolean("metrics", "legacy_names_on"),
    )
    bag = DagBag(dag_folder=sys.argv[1])
    states = [str(bag.dags[dag_id].test().state) for dag_id in ("statsd_probe_ok", "statsd_probe_fail")]
    print("states", states, flush=True)
    return 0 if states == ["success", "failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
