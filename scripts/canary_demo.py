"""The canary part of ``make demo``: three rollouts on a local sandbox, each decision printed.

A stable digits model is served behind the local router; a traffic replayer sends the digits test
images through the router while each candidate rolls out (steps 1, 10, 50, 100 %, 2 s analysis
intervals): a candidate answering half its requests with 500 (the server's fault-injection switch),
a candidate trained on corrupted labels (200 OK, wrong predictions), then a good candidate, which
is promoted. Prometheus (Debian package) is the metrics provider when installed, else the
servers' ``/metrics`` are scraped directly.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

from slipway.config import RolloutConfig
from slipway.rollout.controller import describe
from slipway.rollout.replay import TrafficReplayer
from slipway.rollout.sandbox import MODEL, Sandbox, figures, train_and_register

POLICY = RolloutConfig(
    steps=[1, 10, 50, 100],
    interval_s=2,
    min_requests=5,
    insufficient_traffic_deadline_s=10,
    max_latency_p99_s=2.5,
)


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="slipway-canary-demo-"))
    store_url = (root / "store").as_uri()
    print("Canary demo: training three small digits models (stable, good, corrupted labels)...", flush=True)
    stable = train_and_register(store_url, seed=1)
    good = train_and_register(store_url, seed=2)
    skewed = train_and_register(store_url, seed=3, relabel=lambda y: y % 3)
    provider = "prometheus" if shutil.which("prometheus") else "scrape"
    sandbox = Sandbox(root, store_url, stable)
    scenarios = [
        ("faulty candidate (50 % of its answers are 500)", good, ["--fault-rate", "0.5"]),
        ("candidate trained on corrupted labels (answers 200 OK)", skewed, []),
        ("good candidate", good, []),
    ]
    code = 0
    with sandbox.running(with_prometheus=provider == "prometheus"):
        print(f"stable v{stable} behind the router at {sandbox.urls['router']}; metrics: {provider}")
        for title, version, args in scenarios:
            print(f"\n== {title}: v{version}", flush=True)
            rollout = sandbox.rollout(
                f"demo-{version}-{len(args)}", POLICY, provider=provider, canary_args=args
            )
            rollout.on_decision = lambda record: print("  " + describe(record), flush=True)
            traffic = TrafficReplayer(sandbox.urls["router"], MODEL, sandbox.x[1400:], threads=4).start()
            started = time.monotonic()
            try:
                state = rollout.run(version, stable)
            finally:
                totals = traffic.stop()
            numbers = figures(state, totals)
            print(f"  => {state['status'].upper()}: {state['reason']}")
            print(
                f"  {numbers['intervals']} analyses; the canary answered {numbers['canary_requests_analysed']:.0f} of"
                f" {numbers['all_requests_analysed']:.0f} requests while exposed ({numbers['exposed_share']:.2%});"
                f" {numbers['seconds_with_traffic']:.1f} s with traffic, {time.monotonic() - started:.1f} s in all"
            )
            expected = "promoted" if title.startswith("good") else "rolled_back"
            if state["status"] != expected:
                code = 1
            if state["status"] == "promoted":
                stable = version
    shutil.rmtree(root, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
