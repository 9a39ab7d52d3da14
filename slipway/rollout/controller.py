"""One rollout of a candidate version: start it, analyse it interval by interval, finish it.

The controller holds no state of its own between calls: everything (step, weights, the window's
mark, every analysis with the provider's raw answers, every decision) is one JSON document in the
store, written after each change. ``start`` on an existing document resumes it, and
``analyse`` does nothing before the analysis is due, so a restarted Airflow task, a trigger fired
twice or a second loop continue the same rollout at the same step rather than restarting it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from slipway.config import PipelineConfig, RolloutConfig
from slipway.errors import BadInputError
from slipway.rollout import judges
from slipway.rollout.policy import Decision, Progress, decide, interval_s
from slipway.rollout.providers import MetricsProvider, MetricsUnavailable
from slipway.rollout.routers import TrafficRouter
from slipway.rollout.targets import DeploymentTarget
from slipway.store import ArtifactNotFound, ArtifactStore

log = logging.getLogger(__name__)

RUNNING, PROMOTED, ROLLED_BACK, SKIPPED = "running", "promoted", "rolled_back", "skipped"
FINISHED = (PROMOTED, ROLLED_BACK, SKIPPED)


class RolloutConflict(BadInputError, ValueError):
    """The rollout record holds another candidate: no retry can make them one rollout."""


class Rollout:
    def __init__(
        self,
        store: ArtifactStore,
        key: str,
        policy: RolloutConfig,
        *,
        model: str,
        provider: MetricsProvider,
        router: TrafficRouter,
        target: DeploymentTarget,
        clock: Callable[[], float] = time.time,
        on_decision: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.store = store
        self.key = key
        self.policy = policy
        self.model = model
        self.provider = provider
        self.router = router
        self.target = target
        self.clock = clock
        self.on_decision = on_decision

    # ------------------------------------------------------------------ state

    def load(self) -> dict[str, Any] | None:
        try:
            return self.store.get_json(self.key)
        except ArtifactNotFound:
            return None

    def _save(self, state: dict[str, Any]) -> dict[str, Any]:
        self.store.put_json(self.key, state)
        return state

    @staticmethod
    def skip(store: ArtifactStore, key: str, *, model: str, candidate: int, reason: str) -> dict[str, Any]:
        """Record that the canary was skipped, and why (a rollout already recorded stands)."""
        try:
            return store.get_json(key)
        except ArtifactNotFound:
            pass
        now = time.time()
        state = {
            "model": model,
            "candidate": candidate,
            "status": SKIPPED,
            "reason": f"canary skipped: {reason}",
            "started": now,
            "finished": now,
            "analyses": [],
        }
        store.put_json(key, state)
        return state

    # ------------------------------------------------------------------ the rollout

    def start(self, candidate: int, stable: int | None) -> dict[str, Any]:
        """Deploy the canary at the first step, or return the rollout already under way."""
        state = self.load()
        if state is not None:
            if state["candidate"] != candidate:
                raise RolloutConflict(
                    f"{self.key} holds a rollout of v{state['candidate']}, not v{candidate}: refusing to mix them"
                )
            if state["status"] == RUNNING:
                log.info("resuming the rollout of v%s at step %s", candidate, state["progress"]["step"])
            return state
        started = self.clock()
        info = self.target.deploy_canary(candidate)
        weight = self.policy.steps[0]
        weights = self.router.set_canary_weight(weight)
        mark = self.provider.mark()
        now = self.clock()  # the first step starts once the canary has traffic, not before its deploy
        state = {
            "model": self.model,
            "candidate": candidate,
            "stable": stable,
            "status": RUNNING,
            "reason": "",
            "policy": self.policy.model_dump(),
            "started": started,
            "traffic_started": now,
            "finished": None,
            "canary": info,
            "progress": Progress(step=0, step_started=now).to_dict(),
            "weights": weights,
            "mark": mark,
            "due": now + interval_s(self.policy, 0),
            "analyses": [],
        }
        log.info("canary v%s deployed; %s %% of the traffic", candidate, weight)
        return self._save(state)

    def seconds_to_next(self, state: dict[str, Any]) -> float:
        return max(0.0, state["due"] - self.clock())

    def analyse(self, state: dict[str, Any]) -> dict[str, Any]:
        """Analyse the window that is due, decide, act and record; early or finished: unchanged."""
        now = self.clock()
        if state["status"] != RUNNING or now < state["due"]:
            return state
        progress = Progress.from_dict(state["progress"])
        window = None
        checks = []
        available = self.target.canary_ready(state["canary"])
        note = ""
        if available:
            try:
                window = self.provider.measure(state["mark"])
            except MetricsUnavailable as exc:
                note = str(exc)
                available = exc.variant != "canary"
        if window is not None:
            checks = judges.judge(self.policy, window)
        decision = decide(
            self.policy,
            progress,
            checks,
            canary_requests=int(window.canary.total) if window else 0,
            canary_available=available,
            now=now,
        )
        if note and available:  # the metrics backend or stable failed: no verdict on the canary
            if now - progress.step_started >= self.policy.insufficient_traffic_deadline_s:
                decision = Decision("rollback", f"no metrics past the deadline: {note}", progress, 0)
            else:
                decision = Decision(
                    "hold", f"inconclusive: {note}", progress, self.policy.steps[progress.step]
                )
        elif note:
            decision = Decision(decision.action, f"{decision.reason}: {note}", decision.progress, 0)
        record = {
            "time": now,
            "step": progress.step,
            "weight": self.policy.steps[progress.step],
            "window": window.to_dict() if window else None,
            "checks": [c.to_dict() for c in checks],
            "decision": decision.to_dict(),
        }
        state["analyses"].append(record)
        self._act(state, decision, now)
        log.info("analysis at %s %%: %s (%s)", record["weight"], decision.action, decision.reason)
        self._save(state)
        if self.on_decision:
            self.on_decision(record)
        return state

    def _act(self, state: dict[str, Any], decision: Decision, now: float) -> None:
        state["progress"] = decision.progress.to_dict()
        if decision.action == "rollback":
            state["weights"] = self.router.set_canary_weight(0)
            self.target.remove_canary(state["canary"])
            state.update(status=ROLLED_BACK, reason=decision.reason, finished=now)
            return
        if decision.action == "promote":
            self.target.promote(state["candidate"], state["canary"], self.router)
            state.update(status=PROMOTED, reason=decision.reason, finished=self.clock())
            state["weights"] = {"stable": 100, "canary": 0}
            return
        if decision.action == "advance":
            state["weights"] = self.router.set_canary_weight(decision.weight)
        state["mark"] = self.provider.mark()
        state["due"] = self.clock() + interval_s(self.policy, decision.progress.step)

    def abort(self, state: dict[str, Any], reason: str) -> dict[str, Any]:
        """Roll back now (e.g. the deadline of the task): canary weight 0, canary removed."""
        if state["status"] != RUNNING:
            return state
        state["weights"] = self.router.set_canary_weight(0)
        self.target.remove_canary(state["canary"])
        state.update(status=ROLLED_BACK, reason=reason, finished=self.clock())
        return self._save(state)

    def run(
        self, candidate: int, stable: int | None, sleep: Callable[[float], None] = time.sleep
    ) -> dict[str, Any]:
        """Start (or resume) and analyse until promoted or rolled back, sleeping between analyses."""
        state = self.start(candidate, stable)
        while state["status"] == RUNNING:
            sleep(self.seconds_to_next(state))
            state = self.analyse(state)
        return state


def describe(analysis: dict[str, Any]) -> str:
    """One analysis in one line, with its numbers (for logs and the demo)."""
    window = analysis.get("window") or {}
    canary = window.get("canary") or {}
    stable = window.get("stable") or {}
    n_c = sum((canary.get("requests") or {}).values())
    n_s = sum((stable.get("requests") or {}).values())
    checks = ", ".join(
        f"{c['check']}={'pass' if c['passed'] else 'FAIL' if c['passed'] is False else 'n/a'}"
        + (f"({c['value']:.4g})" if c["value"] is not None else "")
        for c in analysis.get("checks", [])
    )
    decision = analysis["decision"]
    return (
        f"step {analysis['step']} @ {analysis['weight']:>3} %: canary {n_c:.0f} req, stable {n_s:.0f} req;"
        f" {checks or 'no checks'} -> {decision['action'].upper()}: {decision['reason']}"
    )


def summary(state: dict[str, Any]) -> list[str]:
    """One line per analysis and one for the outcome."""
    lines = [describe(a) for a in state.get("analyses", [])]
    lines.append(
        f"rollout of v{state.get('candidate')}: {state.get('status', '?').upper()} - {state.get('reason')}"
    )
    return lines


def rollout_for(config: PipelineConfig, key: str, store: ArtifactStore | None = None) -> Rollout:
    """The rollout a pipeline config describes: provider, router and target from their factories."""
    from slipway.rollout.providers import make_provider
    from slipway.rollout.routers import make_router
    from slipway.rollout.targets import make_target
    from slipway.store import open_store

    return Rollout(
        store or open_store(config.store_url),
        key,
        config.rollout,
        model=config.model_name,
        provider=make_provider(config.rollout, config.model_name),
        router=make_router(config.rollout),
        target=make_target(config),
    )
