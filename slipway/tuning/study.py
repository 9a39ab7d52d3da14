"""A sweep's state in the artifact store: conditional writes instead of a shared database file.

Trials run as separate processes (local subprocesses, or pods that share nothing but the store),
so the study cannot live in a SQLite file or in one process's memory. Its layout, under the
run's prefix (``runs/<pipeline>/<run>/tune/study/``)::

    study.json                  the index: settings, deadline, one entry per trial slot
                                (state, attempts, value); replaced only by compare-and-swap
    trials/<n>/claim.json       the parameters trial slot n trains with; put-if-absent, so a
                                retried or duplicated trial reuses them instead of sampling anew
    trials/<n>/progress.json    per-epoch validation figures while it trains (for people)
    trials/<n>/attempts/<k>.json  why attempt k crashed (the process itself recorded it)
    trials/<n>/result.json      the trial's outcome; put-if-absent, so it is recorded once
    trials/<n>/model/model.keras  the trained model of a complete trial
    trials/<n>/checkpoint/      resumable training state (a killed trial resumes from it)

Why this holds under retries and kills: a slot's params and outcome are create-only, so a retry
can only re-use them; the index is a cache of those records kept current by CAS (a lost race
re-reads and re-applies), and ``finalize`` rebuilds every entry from the records. A slot with
no ``result.json`` when the study is finalized is recorded as ``failed`` (killed or crashed
after its last retry), never silently dropped.

Pure store logic, no Optuna or TensorFlow: the Airflow worker creates studies with it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slipway.config import PipelineConfig
from slipway.errors import BadInputError
from slipway.store import ArtifactNotFound, ArtifactStore, PreconditionFailed

# Optuna's trial states, as stored.
COMPLETE, PRUNED, FAILED, RUNNING, WAITING, SKIPPED = (
    "complete",
    "pruned",
    "failed",
    "running",
    "waiting",
    "skipped",
)
FINISHED = (COMPLETE, PRUNED, FAILED, SKIPPED)
OBJECTIVE = "val_accuracy"
_CAS_ATTEMPTS = 50


class StudyMismatch(BadInputError):
    """A study of this id already exists with other settings: resuming it would mix two sweeps."""


def study_fingerprint(config: PipelineConfig) -> str:
    """What must not change when a study resumes: the data, the base training settings, the sweep."""
    tuning = config.tuning
    assert tuning is not None
    relevant = {
        "data": config.data.model_dump(mode="json"),
        "training": config.training.model_dump(mode="json"),
        "tuning": tuning.model_dump(mode="json", exclude={"parallel", "timeout_s", "leaner"}),
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class StudyStore:
    """One study's records in the store under ``prefix``."""

    store: ArtifactStore
    prefix: str

    # ---- keys

    @property
    def index_key(self) -> str:
        return f"{self.prefix}/study.json"

    def trial_key(self, number: int, name: str) -> str:
        return f"{self.prefix}/trials/{number}/{name}"

    # ---- the index (compare-and-swap)

    def read_index(self) -> dict[str, Any]:
        return self.store.get_json(self.index_key)

    def create(self, config: PipelineConfig, study_id: str, *, now: float | None = None) -> dict[str, Any]:
        """Create the study's index, or resume the existing one (same settings) unchanged."""
        tuning = config.tuning
        if tuning is None:
            raise BadInputError(f"pipeline {config.name!r} has no 'tuning' section")
        created = time.time() if now is None else now
        index = {
            "study_id": study_id,
            "pipeline": config.name,
            "direction": "maximize",
            "objective": OBJECTIVE,
            "fingerprint": study_fingerprint(config),
            "settings": tuning.model_dump(mode="json"),
            "created_at": created,
            "deadline_at": created + tuning.timeout_s if tuning.timeout_s else None,
            "finalized": False,
            "trials": {str(n): {"state": WAITING, "attempts": 0} for n in range(tuning.trials)},
        }
        try:
            self.store.put_json_if_absent(self.index_key, index)
            return index
        except PreconditionFailed:
            existing = self.read_index()
        if existing.get("fingerprint") != index["fingerprint"]:
            raise StudyMismatch(
                f"study {study_id!r} at {self.store.uri(self.index_key)} was created with other data,"
                " training or search-space settings; start a new run to sweep the new settings"
            )
        return existing

    def update_index(self, change: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Apply ``change`` to the index by compare-and-swap, retrying when another writer won.

        ``change`` mutates the dict and returns False when there is nothing to write (idempotent
        re-application after a retry).
        """
        for attempt in range(_CAS_ATTEMPTS):
            raw, etag = self.store.get_with_etag(self.index_key)
            index = json.loads(raw)
            if not change(index):
                return index
            try:
                self.store.compare_and_swap(self.index_key, _dumps(index), etag)
                return index
            except PreconditionFailed:
                time.sleep(min(0.01 * 2**attempt, 0.5))
        raise RuntimeError(f"could not update {self.store.uri(self.index_key)}: too much contention")

    # ---- one trial's records (put-if-absent)

    def claim(self, number: int, params: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
        """Record slot ``number``'s params once; a later claim gets the first one's params."""
        record = {"number": number, "params": params, **meta}
        try:
            self.store.put_json_if_absent(self.trial_key(number, "claim.json"), record)
            return record
        except PreconditionFailed:
            return self.store.get_json(self.trial_key(number, "claim.json"))

    def read_claim(self, number: int) -> dict[str, Any] | None:
        return self._optional(self.trial_key(number, "claim.json"))

    def read_result(self, number: int) -> dict[str, Any] | None:
        return self._optional(self.trial_key(number, "result.json"))

    def record_result(self, number: int, result: dict[str, Any]) -> dict[str, Any]:
        """Record slot ``number``'s outcome once (the first writer wins) and index it."""
        try:
            self.store.put_json_if_absent(self.trial_key(number, "result.json"), result)
        except PreconditionFailed:
            result = self.store.get_json(self.trial_key(number, "result.json"))
        self.update_index(lambda index: _set_entry(index, number, _entry_of(result)))
        return result

    def start_attempt(self, number: int) -> int:
        """Count one more attempt of slot ``number`` (a retry after a kill is attempt 2)."""
        attempts = 0

        def change(index: dict[str, Any]) -> bool:
            nonlocal attempts
            entry = index["trials"].setdefault(str(number), {"state": WAITING, "attempts": 0})
            attempts = int(entry.get("attempts", 0)) + 1
            entry.update(state=RUNNING, attempts=attempts)
            return True

        self.update_index(change)
        return attempts

    def record_crash(self, number: int, attempt: int, error: str) -> None:
        self.store.put_json(
            self.trial_key(number, f"attempts/{attempt}.json"),
            {"attempt": attempt, "error": error[-4000:], "at": time.time()},
        )

    def write_progress(self, number: int, progress: dict[str, Any]) -> None:
        self.store.put_json(self.trial_key(number, "progress.json"), progress)

    def crashes(self, number: int) -> list[dict[str, Any]]:
        prefix = self.trial_key(number, "attempts")
        return [self.store.get_json(key) for key in self.store.list(prefix) if key.endswith(".json")]

    # ---- the whole study

    def records(self, exclude: int | None = None) -> list[dict[str, Any]]:
        """Every claimed trial with its params and, when finished, its result (for the sampler)."""
        out = []
        for number in self.slot_numbers():
            if number == exclude:
                continue
            claim = self.read_claim(number)
            if claim is None:
                continue
            out.append({"number": number, "params": claim["params"], "result": self.read_result(number)})
        return out

    def slot_numbers(self) -> list[int]:
        return sorted(int(n) for n in self.read_index()["trials"])

    def finalize(self) -> dict[str, Any]:
        """Close the study: every slot gets its final state, rebuilt from the create-only records.

        A slot that never recorded a result (killed, or crashed on its last retry) becomes
        ``failed`` with its attempts' errors; one that never started (budget spent) ``skipped``.
        Idempotent, and a trial that would start after this refuses to (``finalized``).
        """
        entries: dict[str, dict[str, Any]] = {}
        for number in self.slot_numbers():
            result = self.read_result(number)
            if result is not None:
                entries[str(number)] = _entry_of(result)
                continue
            crashes = self.crashes(number)
            claimed = self.read_claim(number) is not None
            if claimed or crashes:
                why = crashes[-1]["error"].strip().splitlines()[-1] if crashes else "killed (no result)"
                entries[str(number)] = {"state": FAILED, "value": None, "error": why}
            else:
                entries[str(number)] = {"state": SKIPPED, "value": None, "error": "never started"}

        def change(index: dict[str, Any]) -> bool:
            for key, entry in entries.items():
                current = index["trials"].setdefault(key, {})
                current.update({k: v for k, v in entry.items()})
            index["finalized"] = True
            return True

        return self.update_index(change)

    def _optional(self, key: str) -> dict[str, Any] | None:
        try:
            return self.store.get_json(key)
        except ArtifactNotFound:
            return None


def best_trial(index: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """The complete trial with the highest validation figure (ties: the lowest number)."""
    complete = [
        (int(n), entry)
        for n, entry in index["trials"].items()
        if entry.get("state") == COMPLETE and entry.get("value") is not None
    ]
    if not complete:
        return None
    return max(complete, key=lambda item: (item[1]["value"], -item[0]))


def _entry_of(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "state": result["state"],
        "value": result.get("value"),
        "epochs": result.get("epochs_completed"),
        "duration_s": result.get("duration_s"),
    }


def _set_entry(index: dict[str, Any], number: int, entry: dict[str, Any]) -> bool:
    current = index["trials"].setdefault(str(number), {})
    if all(current.get(k) == v for k, v in entry.items()):
        return False
    current.update(entry)
    return True


def _dumps(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, default=str) + "\n").encode()
