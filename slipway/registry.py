"""Model registry: immutable integer versions that TF Serving can serve as they are, and aliases.

Everything lives in the artifact store, so the registry needs no database and works the same on
``file://`` and ``s3://``; the store's two conditional writes make it safe for concurrent DAG runs::

    registry/<model>/                 TF Serving ``model_base_path``: it serves the numeric folders
      1/  2/  ...                     saved_model.pb, variables/, assets/, fingerprint.pb,
                                      model.keras, metadata.json (copied from the train step)
      _registry/                      bookkeeping; not numeric, so TF Serving ignores it
        versions/<n>.json             version record (with each file's SHA-256); claimed with
                                      put_if_absent, never rewritten
        runs/<digest>/<n>.json        (run id, source) -> version index, for idempotent retries
        aliases.json                  {"candidate": 3, "champion": 2}; moved only by compare-and-swap
        history/<seq:08d>.json        append-only alias moves (who, when, which run, why)
        attachments/<n>/<name>        per-version files (blessing, report); create-only

Why this shape:

* A version number is claimed *before* the files are copied, by creating ``versions/<n>.json``
  with put-if-absent: two runs registering at once get different numbers, never the same one.
* The copy writes ``saved_model.pb`` last. TF Serving loads a version when it sees the folder;
  with the graph last, a half-copied version fails to load (and is retried) instead of loading
  the wrong variables. ``set_alias`` refuses a version whose copy is not complete.
* ``register`` is idempotent per (run id, source prefix): an Airflow retry gets the version its
  first attempt claimed, and finishes that version's copy if the first attempt died mid-way.
* Each file's SHA-256 is recorded in the version record at registration (``checksums``), so a
  server can refuse a copy that was tampered with or is incomplete (``verify_files``).
* Aliases move by compare-and-swap on one small JSON file, with an optional ``expected`` current
  version, so a promotion decided on a stale view fails with ``AliasConflict`` and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from types import EllipsisType
from typing import Any

from slipway.errors import SlipwayError
from slipway.store import ArtifactNotFound, ArtifactStore, PreconditionFailed
from slipway.store.base import check_key, check_prefix

ALIAS_PATTERN = re.compile(r"[a-z][a-z0-9_-]*")
MODEL_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
GRAPH_FILE = "saved_model.pb"  # copied last: its presence means the version folder is complete
_VERSION_FILE = re.compile(r"([1-9][0-9]*)\.json")


class RegistryError(SlipwayError):
    """A registry operation was refused; the message names the model, version and alias."""


class VersionNotFound(RegistryError):
    """The model has no such version."""


class AliasConflict(RegistryError):
    """The alias is no longer where the caller expected it: the caller's view is stale."""


class AttachmentExists(RegistryError, PreconditionFailed):
    """The version already has this attachment with other content (attachments are immutable).

    Also a ``PreconditionFailed``: it is a create-only write that lost, and callers that keep the
    first attachment on a retry can treat it like any other lost conditional write."""


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: where its files are and what produced it."""

    model: str
    number: int
    prefix: str  # store key prefix of the model files, ``registry/<model>/<n>``
    uri: str
    metadata: dict[str, Any]
    run_id: str
    created_at: str
    actor: str
    source_prefix: str
    files: tuple[str, ...] = field(default=())
    # relative file name -> "sha256:<hex>", recorded at registration; empty for versions
    # registered before checksums were recorded
    checksums: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AliasMove:
    """One alias move, as recorded in the history."""

    model: str
    alias: str
    from_version: int | None
    to_version: int
    actor: str
    run_id: str
    reason: str
    at: str
    seq: int


class ModelRegistry:
    """The versions and aliases of one model in an artifact store."""

    def __init__(self, store: ArtifactStore, model_name: str, root: str = "registry") -> None:
        if not isinstance(model_name, str) or not MODEL_NAME_PATTERN.fullmatch(model_name):
            raise RegistryError(f"invalid model name {model_name!r}: use letters, digits, '.', '_' and '-'")
        self.store = store
        self.model = model_name
        self.base_prefix = check_prefix(root) + model_name

    def __repr__(self) -> str:
        return f"ModelRegistry({self.store.uri(self.base_prefix)!r})"

    @property
    def base_uri(self) -> str:
        """What TF Serving takes as ``model_base_path``."""
        return self.store.uri(self.base_prefix)

    def _key(self, *parts: str | int) -> str:
        return "/".join([self.base_prefix, "_registry", *map(str, parts)])

    # ---- versions

    def model_prefix(self, version: int) -> str:
        """Store key prefix of a version's model files (``registry/<model>/<n>``)."""
        return f"{self.base_prefix}/{_check_number(version)}"

    def versions(self) -> list[int]:
        """All registered version numbers, ascending."""
        names = (key.rsplit("/", 1)[-1] for key in self.store.list(self._key("versions")))
        return sorted(int(m.group(1)) for name in names if (m := _VERSION_FILE.fullmatch(name)))

    def latest_version(self) -> int | None:
        versions = self.versions()
        return versions[-1] if versions else None

    def get_version(self, version: int) -> ModelVersion:
        """The version record; ``VersionNotFound`` if it was never registered."""
        try:
            record = self.store.get_json(self._key("versions", f"{_check_number(version)}.json"))
        except ArtifactNotFound:
            known = self.versions()
            have = f"versions {known[0]}..{known[-1]}" if known else "no versions"
            raise VersionNotFound(
                f"model {self.model!r} has no version {version} ({have}) in {self.base_uri}"
            ) from None
        return self._version_from(record)

    def _version_from(self, record: dict[str, Any]) -> ModelVersion:
        number = int(record["number"])
        return ModelVersion(
            model=self.model,
            number=number,
            prefix=self.model_prefix(number),
            uri=self.store.uri(self.model_prefix(number)),
            metadata=dict(record.get("metadata") or {}),
            run_id=record["run_id"],
            created_at=record["created_at"],
            actor=record.get("actor", ""),
            source_prefix=record["source_prefix"],
            files=tuple(record.get("files") or ()),
            checksums={str(k): str(v) for k, v in (record.get("checksums") or {}).items()},
        )

    def register(
        self, source_prefix: str, metadata: dict[str, Any], *, run_id: str, actor: str = "slipway"
    ) -> ModelVersion:
        """Register the model files under ``source_prefix`` as the next version.

        The number is claimed first (put-if-absent on its record, moving up on conflict), then the
        files are copied. Registering the same ``source_prefix`` for the same ``run_id`` again
        returns the existing version (and completes its copy), so Airflow retries are safe.
        """
        source = check_prefix(source_prefix).rstrip("/")
        if not source:
            raise RegistryError(f"model {self.model!r}: register needs a source prefix ({source_prefix!r})")
        if not run_id:
            raise RegistryError(f"model {self.model!r}: register needs a run_id")
        if not isinstance(metadata, dict):
            raise RegistryError(
                f"model {self.model!r}: metadata must be a dict, got {type(metadata).__name__}"
            )
        digest = hashlib.sha256(f"{run_id}\n{source}".encode()).hexdigest()[:24]

        existing = self._find_registered(digest, run_id, source)
        if existing is not None:
            self._copy_files(existing)
            return existing

        files = [key[len(source) + 1 :] for key in self.store.list(source)]
        if not files:
            raise RegistryError(
                f"model {self.model!r}: no model files under {self.store.uri(source + '/')} (run {run_id!r})"
            )
        checksums = {rel: file_digest(self.store.get_bytes(f"{source}/{rel}")) for rel in files}
        number = (self.latest_version() or 0) + 1
        while True:
            record = {
                "number": number,
                "created_at": _now(),
                "source_prefix": source,
                "metadata": metadata,
                "run_id": run_id,
                "actor": actor,
                "files": files,
                "checksums": checksums,
            }
            try:
                self.store.put_json_if_absent(self._key("versions", f"{number}.json"), record)
                break
            except PreconditionFailed:
                taken = self.store.get_json(self._key("versions", f"{number}.json"))
                if (taken["run_id"], taken["source_prefix"]) == (run_id, source):
                    break  # our own write, reported as a conflict by a retried request
                number += 1
        self._index(digest, number, run_id, source)
        version = self.get_version(number)
        self._copy_files(version)
        return version

    def _index(self, digest: str, number: int, run_id: str, source: str) -> None:
        try:
            entry = {"version": number, "run_id": run_id, "source_prefix": source}
            self.store.put_json_if_absent(self._key("runs", digest, f"{number}.json"), entry)
        except PreconditionFailed:
            pass  # same entry, written by an earlier attempt

    def _find_registered(self, digest: str, run_id: str, source: str) -> ModelVersion | None:
        """The version this (run, source) registered before, if any.

        The index answers with one listing; versions that have no index entry (their registration
        stopped between claiming the number and indexing it) are checked by reading their record.
        """
        indexed: dict[str, int] = {}
        for key in self.store.list(self._key("runs")):
            entry_digest, name = key.rsplit("/", 2)[-2:]
            if m := _VERSION_FILE.fullmatch(name):
                indexed[entry_digest] = min(int(m.group(1)), indexed.get(entry_digest, 1 << 62))
        if digest in indexed:
            return self.get_version(indexed[digest])
        covered = set(indexed.values())
        for number in reversed(self.versions()):
            if number in covered:
                continue
            version = self.get_version(number)
            if (version.run_id, version.source_prefix) == (run_id, source):
                self._index(digest, number, run_id, source)
                return version
        return None

    def _copy_files(self, version: ModelVersion) -> None:
        """Copy the files that are not there yet, the graph last (see the module docstring)."""
        dst = version.prefix + "/"
        present = set(self.store.list(dst))
        for rel in sorted(version.files, key=lambda name: (name == GRAPH_FILE, name)):
            if dst + rel not in present:
                self.store.copy(f"{version.source_prefix}/{rel}", dst + rel)

    def _missing_files(self, version: ModelVersion) -> list[str]:
        present = set(self.store.list(version.prefix))
        return [rel for rel in version.files if f"{version.prefix}/{rel}" not in present]

    # ---- aliases

    def aliases(self) -> dict[str, int]:
        """Every alias and the version it points to."""
        return self._read_aliases()[0]

    def get_alias(self, alias: str) -> int | None:
        """The version ``alias`` points to, or ``None`` if it is not set."""
        return self.aliases().get(_check_alias(alias))

    def _read_aliases(self) -> tuple[dict[str, int], str | None]:
        try:
            data, etag = self.store.get_with_etag(self._key("aliases.json"))
        except ArtifactNotFound:
            return {}, None
        return {str(k): int(v) for k, v in json.loads(data).items()}, etag

    def set_alias(
        self,
        alias: str,
        version: int,
        *,
        actor: str,
        run_id: str,
        reason: str,
        expected: int | EllipsisType | None = ...,
    ) -> AliasMove:
        """Point ``alias`` at ``version`` and record the move in the history.

        ``expected`` (when given; ``None`` means "unset") is the version the caller believes the
        alias points to now, e.g. the champion it compared against: if it moved meanwhile,
        ``AliasConflict`` is raised and nothing changes. Concurrent moves of other aliases only
        cause an internal retry. If the alias already points at ``version`` (a retried task whose
        first attempt got through) the recorded move is returned and nothing is written.
        """
        _check_alias(alias)
        target = self.get_version(version)
        missing = self._missing_files(target)
        if missing:
            raise RegistryError(
                f"model {self.model!r} version {version} is incomplete (missing {missing[:5]} under"
                f" {target.uri}); re-run register for run {target.run_id!r} before setting alias {alias!r}"
            )
        while True:
            current_aliases, etag = self._read_aliases()
            current = current_aliases.get(alias)
            if current == version:
                return self._recorded_move(alias, version, actor=actor, run_id=run_id, reason=reason)
            if expected is not ... and current != expected:
                raise AliasConflict(
                    f"model {self.model!r} alias {alias!r} points to version {current}, not {expected}"
                    f" as expected: not moved to version {version} (the caller's view is stale)"
                )
            updated = json.dumps({**current_aliases, alias: version}, indent=2, sort_keys=True) + "\n"
            try:
                self.store.compare_and_swap(self._key("aliases.json"), updated.encode(), etag)
                break
            except PreconditionFailed:
                continue  # someone moved an alias meanwhile: re-read, re-check ``expected``
        return self._append_history(alias, current, version, actor=actor, run_id=run_id, reason=reason)

    def _recorded_move(self, alias: str, version: int, *, actor: str, run_id: str, reason: str) -> AliasMove:
        moves = self.history(alias)
        if moves and moves[-1]["to_version"] == version:
            return AliasMove(**moves[-1])
        # The alias moved but its history record was not written (the writer died in between).
        previous = moves[-1]["to_version"] if moves else None
        return self._append_history(alias, previous, version, actor=actor, run_id=run_id, reason=reason)

    def _append_history(
        self, alias: str, from_version: int | None, to_version: int, *, actor: str, run_id: str, reason: str
    ) -> AliasMove:
        seqs = [int(key.rsplit("/", 1)[-1][:-5]) for key in self.store.list(self._key("history"))]
        seq = max(seqs, default=0) + 1
        while True:
            move = AliasMove(self.model, alias, from_version, to_version, actor, run_id, reason, _now(), seq)
            try:
                self.store.put_json_if_absent(self._key("history", f"{seq:08d}.json"), asdict(move))
                return move
            except PreconditionFailed:
                seq += 1

    def history(self, alias: str | None = None) -> list[dict[str, Any]]:
        """Alias moves, oldest first; only those of ``alias`` when given."""
        if alias is not None:
            _check_alias(alias)
        records = [self.store.get_json(key) for key in self.store.list(self._key("history"))]
        return [r for r in records if alias is None or r["alias"] == alias]

    # ---- attachments

    def attach(self, version: int, name: str, data: bytes) -> str:
        """Attach a file to a version (blessing, report); returns its key. Attachments are
        immutable: attaching the same bytes again is a no-op, different bytes are refused."""
        key = self.attachment_key(version, name)
        self.get_version(version)
        try:
            self.store.put_if_absent(key, data)
        except PreconditionFailed:
            if self.store.get_bytes(key) != data:
                raise AttachmentExists(
                    f"model {self.model!r} version {version} already has attachment {name!r} with"
                    f" different content; attachments are immutable ({self.store.uri(key)})"
                ) from None
        return key

    def read_attachment(self, version: int, name: str) -> bytes:
        key = self.attachment_key(version, name)
        try:
            return self.store.get_bytes(key)
        except ArtifactNotFound:
            raise RegistryError(
                f"model {self.model!r} version {version} has no attachment {name!r} ({self.store.uri(key)})"
            ) from None

    def attachment_uri(self, version: int, name: str) -> str:
        return self.store.uri(self.attachment_key(version, name))

    def attachment_key(self, version: int, name: str) -> str:
        return self._key("attachments", _check_number(version), check_key(name))


def file_digest(data: bytes) -> str:
    """How a model file's checksum is written in the version record."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def verify_files(version: ModelVersion, present: dict[str, bytes | str]) -> None:
    """Check a copy of a version's files against the checksums recorded at registration.

    ``present`` maps each relative file name found in the copy to its bytes or its digest. Raises
    ``RegistryError`` naming every missing, unexpected or altered file: a tampered or partially
    copied model must never be served.
    """
    where = f"model {version.model!r} version {version.number}"
    if not version.checksums:
        raise RegistryError(f"{where} has no checksums recorded at registration; cannot verify {version.uri}")
    missing = sorted(set(version.checksums) - set(present))
    extra = sorted(set(present) - set(version.checksums))
    altered = sorted(
        rel
        for rel, content in present.items()
        if rel in version.checksums
        and (content if isinstance(content, str) else file_digest(content)) != version.checksums[rel]
    )
    problems = []
    if missing:
        problems.append(
            f"missing {missing[:5]}" + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        )
    if altered:
        problems.append(f"checksum mismatch in {altered[:5]}")
    if extra:
        problems.append(f"unexpected files {extra[:5]}")
    if problems:
        raise RegistryError(
            f"{where} at {version.uri} does not match what was registered ({'; '.join(problems)}):"
            " refusing a tampered or partial model"
        )


def _check_number(version: int) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise RegistryError(f"invalid model version {version!r}: versions are integers >= 1")
    return version


def _check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not ALIAS_PATTERN.fullmatch(alias):
        raise RegistryError(f"invalid alias {alias!r}: must match ^[a-z][a-z0-9_-]*$")
    return alias


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
