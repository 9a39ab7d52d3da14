"""False rollbacks of a good candidate over repeated short rollouts (issue 11's figure).

One sandbox (stable v1 behind the router, real Prometheus when installed), one good candidate v2.
Each of ``--repeats`` rollouts runs the real analyses (steps 1, 10, 50, 100 %, ``--interval`` s)
under replayed traffic; to keep the run short the canary server is kept between rollouts and the
promotion's server swap is skipped (the router goes back to stable): the decisions are the
thing measured here, promotion itself is covered by the tests.

    .venv/bin/python -m bench.rollout_false_rollbacks --repeats 20 --interval 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from slipway.config import RolloutConfig
from slipway.rollout.replay import TrafficReplayer
from slipway.rollout.routers import TrafficRouter
from slipway.rollout.sandbox import MODEL, Sandbox, figures, train_and_register


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="slipway-rollout-bench-"))
    store_url = (root / "store").as_uri()
    stable = train_and_register(store_url, seed=1)
    good = train_and_register(store_url, seed=2)
    policy = RolloutConfig(
        steps=[1, 10, 50, 100],
        interval_s=args.interval,
        min_requests=5,
        insufficient_traffic_deadline_s=10 * args.interval,
        max_latency_p99_s=2.5,
    )
    provider = "prometheus" if shutil.which("prometheus") else "scrape"
    runs: list[dict[str, Any]] = []
    sandbox = Sandbox(root, store_url, stable)
    with sandbox.running(with_prometheus=provider == "prometheus"):
        for i in range(args.repeats):
            rollout = sandbox.rollout(f"bench-{i}", policy, provider=provider)
            target = rollout.target

            def keep(version: int, info: dict[str, Any], router: TrafficRouter) -> None:
                router.set_canary_weight(0)

            target.promote = keep  # type: ignore[method-assign]
            target.remove_canary = lambda info: None  # type: ignore[method-assign]
            traffic = TrafficReplayer(sandbox.urls["router"], MODEL, sandbox.x[1400:], threads=4).start()
            try:
                state = rollout.run(good, stable)
            finally:
                totals = traffic.stop()
            numbers = figures(state, totals)
            runs.append(numbers)
            print(
                f"{i + 1:2d}/{args.repeats}: {state['status']} in {numbers['seconds_with_traffic']:.1f} s - {state['reason']}",
                flush=True,
            )
    false_rollbacks = sum(r["status"] != "promoted" for r in runs)
    result = {
        "provider": provider,
        "interval_s": args.interval,
        "repeats": len(runs),
        "false_rollbacks": false_rollbacks,
        "seconds_with_traffic": [round(r["seconds_with_traffic"], 2) for r in runs],
        "reasons": [r["reason"] for r in runs if r["status"] != "promoted"],
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    return 0 if false_rollbacks == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
