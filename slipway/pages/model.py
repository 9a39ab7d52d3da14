"""The model page: a registered model's versions, how each alias moved and why, what serves now.

The same facts render as HTML (the artifacts plugin's ``/slipway/models/<pipeline>``) and as text
(``python -m slipway history MODEL``), so a script and a person in the UI read the same thing.

Accuracy per version: the accuracy its run's evaluate step measured on that run's test split
(``evaluate/result.json``, or the ``test_accuracy`` recorded at registration when the run's
records are gone). A golden-set accuracy is shown when the evaluate result carries one
(``golden``); otherwise the column says it was not measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slipway.pages import html as h
from slipway.registry import ModelRegistry
from slipway.steps.context import safe_run_id
from slipway.store import ArtifactNotFound, ArtifactStore

SERVING_ALIAS = "champion"


@dataclass(frozen=True)
class VersionRow:
    number: int
    created_at: str
    run_id: str
    actor: str
    pipeline: str | None
    test_accuracy: float | None
    golden_accuracy: float | None
    gate: str | None  # blessed | rejected | forced
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class ModelRecord:
    model: str
    uri: str
    versions: tuple[VersionRow, ...]
    aliases: dict[str, int]
    history: tuple[dict[str, Any], ...]

    @property
    def serving(self) -> int | None:
        return self.aliases.get(SERVING_ALIAS)


def load_model(store: ArtifactStore, model: str, pipeline: str | None = None) -> ModelRecord:
    """Read the registry of ``model`` and, per version, its run's evaluation figures."""
    registry = ModelRegistry(store, model)
    aliases = registry.aliases()
    rows = []
    for number in registry.versions():
        version = registry.get_version(number)
        meta = version.metadata
        run_pipeline = meta.get("pipeline") or pipeline
        evaluation = _evaluation(store, run_pipeline, version.run_id)
        candidate = (evaluation or {}).get("candidate") or {}
        rows.append(
            VersionRow(
                number=number,
                created_at=version.created_at,
                run_id=version.run_id,
                actor=version.actor,
                pipeline=run_pipeline,
                test_accuracy=_float(candidate.get("accuracy", meta.get("test_accuracy"))),
                golden_accuracy=_float(_golden(evaluation)),
                gate=((meta.get("blessing") or {}).get("result")),
                aliases=tuple(sorted(a for a, v in aliases.items() if v == number)),
            )
        )
    return ModelRecord(
        model=model,
        uri=registry.base_uri,
        versions=tuple(rows),
        aliases=aliases,
        history=tuple(registry.history()),
    )


def _evaluation(store: ArtifactStore, pipeline: str | None, run_id: str) -> dict[str, Any] | None:
    if not pipeline:
        return None
    try:
        return store.get_json(f"runs/{pipeline}/{safe_run_id(run_id)}/evaluate/result.json")
    except (ArtifactNotFound, ValueError):
        return None


def _golden(evaluation: dict[str, Any] | None) -> Any:
    """The candidate's golden-set accuracy, wherever the evaluate result records it."""
    if not evaluation:
        return None
    golden = evaluation.get("golden")
    if isinstance(golden, dict):
        candidate = golden.get("candidate")
        if isinstance(candidate, dict):
            return candidate.get("accuracy")
        return golden.get("accuracy")
    candidate = evaluation.get("candidate") or {}
    return candidate.get("golden_accuracy")


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# ----------------------------------------------------------------------------- HTML


def render_model_page(
    record: ModelRecord, *, run_url: Callable[[str, str], str | None] = lambda p, r: None
) -> str:
    """The model page; ``run_url(pipeline, run_id)`` links a version to its run page."""
    serving = record.serving
    head = (
        f"<p>{h.verdict(h.PASS, f'SERVING v{serving}') if serving else h.verdict(h.INFO, 'NOTHING SERVES YET')} "
        f"The <code>{SERVING_ALIAS}</code> alias is what production serves. Aliases: "
        + (
            ", ".join(
                f"<code>{h.e(a)}</code> &rarr; v{h.count(v)}" for a, v in sorted(record.aliases.items())
            )
            or "none"
        )
        + f".</p><p class='meta'>Registry <code>{h.e(record.uri)}</code></p>"
    )
    rows = [
        (
            f"v{h.count(v.number)}" + (" <b>(serving)</b>" if v.number == serving else ""),
            h.e(", ".join(v.aliases) or "-"),
            h.num(v.test_accuracy),
            h.num(v.golden_accuracy) if v.golden_accuracy is not None else "not measured",
            h.e(v.gate or "-"),
            h.e(h.when(v.created_at)),
            h.link(run_url(v.pipeline or "", v.run_id) if v.pipeline else None, v.run_id),
            h.e(v.actor),
        )
        for v in reversed(record.versions)
    ]
    note = (
        "<p class='meta'>Test accuracy: measured by the version's run (evaluate step) on that run's "
        "test split. Golden-set accuracy: on the pipeline's golden set, when the evaluate step "
        "measured one.</p>"
    )
    versions = (
        h.table(
            ("version", "aliases", "test accuracy", "golden-set accuracy", "gate", "registered", "run", "by"),
            rows,
            caption="Versions, newest first",
        )
        if rows
        else "<p>No versions are registered.</p>"
    )
    moves = [
        (
            h.e(h.when(m.get("at"))),
            f"<code>{h.e(m.get('alias'))}</code>",
            h.e(_version(m.get("from_version"))) + " &rarr; " + h.e(_version(m.get("to_version"))),
            h.e(m.get("actor")),
            h.link(run_url(pipeline, m.get("run_id", "")) if pipeline else None, m.get("run_id", "")),
            h.e(m.get("reason")),
        )
        for m in reversed(record.history)
        for pipeline in [_pipeline_of(record, m)]
    ]
    history = (
        h.table(
            ("when", "alias", "move", "actor", "run", "reason"), moves, caption="Alias moves, newest first"
        )
        if moves
        else "<p>No alias has moved yet.</p>"
    )
    body = (
        head
        + h.section("versions", "Versions", versions + note)
        + h.section("history", "When and why each alias moved", history)
    )
    return h.page(f"Model {record.model}", body)


def _pipeline_of(record: ModelRecord, move: dict[str, Any]) -> str | None:
    for v in record.versions:
        if v.number == move.get("to_version"):
            return v.pipeline
    return None


def _version(value: Any) -> str:
    return "(none)" if value is None else f"v{value}"


# ----------------------------------------------------------------------------- text


def model_text(record: ModelRecord) -> str:
    """The model page as plain text (``python -m slipway history MODEL``)."""
    serving = record.serving
    lines = [
        f"Model {record.model}  ({record.uri})",
        f"  serving    {f'v{serving} ({SERVING_ALIAS})' if serving else 'nothing yet (no champion)'}",
        "  aliases    " + (", ".join(f"{a} -> v{v}" for a, v in sorted(record.aliases.items())) or "none"),
        "",
        "  versions (newest first)",
        f"    {'version':<9} {'aliases':<20} {'test acc':>8}  {'golden acc':>12}  {'gate':<9} {'registered':<23} run",
    ]
    for v in reversed(record.versions):
        lines.append(
            f"    {'v' + str(v.number):<9} {', '.join(v.aliases) or '-':<20} {h.num(v.test_accuracy):>8}  "
            f"{h.num(v.golden_accuracy) if v.golden_accuracy is not None else 'not measured':>12}  "
            f"{v.gate or '-':<9} {h.when(v.created_at):<23} {v.run_id}"
        )
    if not record.versions:
        lines.append("    (no versions registered)")
    lines += ["", "  alias moves (newest first)"]
    for m in reversed(record.history):
        lines.append(
            f"    {h.when(m.get('at'))}  {m.get('alias')}: {_version(m.get('from_version'))} -> "
            f"{_version(m.get('to_version'))}  by {m.get('actor')}  run {m.get('run_id')}"
        )
        lines.append(f"      why: {m.get('reason')}")
    if not record.history:
        lines.append("    (no alias has moved yet)")
    return "\n".join(lines)


def history_main(model: str, *, config_path: str | None = None, store_url: str | None = None) -> int:
    """``python -m slipway history MODEL [--config FILE | --store URL]``: print the model page.

    The store is the config's (when given), else ``--store``, else ``SLIPWAY_STORE_URL``."""
    import os
    import sys

    from slipway.config import ConfigError, load_config
    from slipway.errors import EXIT_BAD_INPUT, EXIT_OK
    from slipway.registry import RegistryError
    from slipway.store import StoreError, open_store

    pipeline = None
    try:
        if config_path:
            config = load_config(config_path)
            store_url, pipeline = config.store_url, config.name
        store_url = store_url or os.environ.get("SLIPWAY_STORE_URL")
        if not store_url:
            raise ConfigError("no store: pass --config FILE or --store URL, or set SLIPWAY_STORE_URL")
        record = load_model(open_store(store_url), model, pipeline)
    except (ConfigError, RegistryError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(model_text(record))
    return EXIT_OK
