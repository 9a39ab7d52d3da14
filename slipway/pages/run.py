"""The run page: one retraining run's story on one page, built from what the steps stored.

Order follows the run: trigger and parameters, dataset snapshot, validation verdict (failed checks
named), training curves, evaluation against the champion, the gate's decision and reasons, the
registered version and its promotion, the rollout (only when a rollout record exists), and links
to the detailed reports. Pure and Airflow-free: the artifacts plugin adds what only Airflow knows
(who triggered the run, with which parameters, task states) as a ``Trigger`` and the URL builders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slipway.pages import html as h
from slipway.pages.chart import line_chart
from slipway.registry import ModelRegistry
from slipway.steps.context import RunContext
from slipway.store import ArtifactNotFound

UrlFor = Callable[[str], str | None]


@dataclass(frozen=True)
class TaskState:
    task_id: str
    state: str | None
    try_number: int | None = None
    url: str | None = None


@dataclass(frozen=True)
class Trigger:
    """What the orchestrator knows about the run (absent when the page is rendered without it)."""

    run_type: str | None = None
    triggered_by: str | None = None
    user: str | None = None
    state: str | None = None
    logical_date: Any = None
    start: Any = None
    end: Any = None
    conf: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    tasks: tuple[TaskState, ...] = ()


@dataclass(frozen=True)
class RunRecord:
    """Everything the store holds about one run."""

    pipeline: str
    model: str
    run_id: str
    prefix: str
    ingest: dict[str, Any] | None
    validate: dict[str, Any] | None
    train: dict[str, Any] | None
    evaluate: dict[str, Any] | None
    blessing: dict[str, Any] | None
    final_report_key: str | None
    version: int | None
    moves: tuple[dict[str, Any], ...]  # alias moves made by this run
    rollout: dict[str, Any] | None
    champion_now: int | None
    description: str = ""


def _json(ctx: RunContext, key: str) -> dict[str, Any] | None:
    try:
        value = ctx.store.get_json(key)
    except ArtifactNotFound:
        return None
    return value if isinstance(value, dict) else None


def load_run(ctx: RunContext) -> RunRecord:
    """Read every record of the run (missing steps are ``None``: the page says they did not run)."""
    registry = ModelRegistry(ctx.store, ctx.config.model_name)
    mine = [v for v in registry.versions() if registry.get_version(v).run_id == ctx.run_id]
    final_report = ctx.key("gate", "report.html")
    rollout = _json(ctx, ctx.layout.rollout_state)
    return RunRecord(
        pipeline=ctx.config.name,
        model=ctx.config.model_name,
        run_id=ctx.run_id,
        prefix=ctx.prefix,
        ingest=_json(ctx, ctx.result_key("ingest")),
        validate=_json(ctx, ctx.result_key("validate")),
        train=_json(ctx, ctx.result_key("train")),
        evaluate=_json(ctx, ctx.result_key("evaluate")),
        blessing=_json(ctx, ctx.key("gate", "blessing.json")),
        final_report_key=final_report if ctx.store.exists(final_report) else None,
        version=mine[-1] if mine else None,
        moves=tuple(m for m in registry.history() if m.get("run_id") == ctx.run_id),
        rollout=rollout,
        champion_now=registry.get_alias("champion"),
        description=ctx.config.description or "",
    )


def render_run_page(
    record: RunRecord,
    *,
    trigger: Trigger | None = None,
    artifact_url: UrlFor = lambda key: None,
    model_url: str | None = None,
) -> str:
    """The whole run page. ``artifact_url(key)`` turns a store key into a link (None: no link)."""
    sections = [
        _trigger_section(record, trigger),
        _dataset_section(record),
        _validation_section(record, artifact_url),
        _training_section(record),
        _evaluation_section(record, artifact_url),
        _gate_section(record, artifact_url),
        _registry_section(record, artifact_url, model_url),
    ]
    if record.rollout is not None:
        sections.append(_rollout_section(record.rollout))
    sections.append(_reports_section(record, artifact_url))
    anchors = [
        ("trigger", "Trigger"),
        ("dataset", "Dataset"),
        ("validation", "Validation"),
        ("training", "Training"),
        ("evaluation", "Evaluation"),
        ("gate", "Gate"),
        ("registry", "Registry"),
        *([("rollout", "Rollout")] if record.rollout is not None else []),
        ("reports", "Reports"),
    ]
    nav = (
        "<nav aria-label='sections'>" + "".join(f"<a href='#{a}'>{h.e(t)}</a>" for a, t in anchors) + "</nav>"
    )
    intro = (
        f"<p class='meta'>Pipeline <b>{h.e(record.pipeline)}</b>, model <b>{h.e(record.model)}</b>"
        + (f" ({h.link(model_url, 'model page')})" if model_url else "")
        + f". Stored under <code>{h.e(record.prefix)}/</code>.</p>"
        + (f"<p>{h.e(record.description)}</p>" if record.description else "")
    )
    return h.page(f"Run {record.run_id}", intro + nav + "".join(sections))


# ----------------------------------------------------------------------------- sections


def _trigger_section(record: RunRecord, trigger: Trigger | None) -> str:
    if trigger is None:
        return h.section(
            "trigger",
            "Trigger and parameters",
            "<p>The orchestrator's record of this run is not available here.</p>",
        )
    items = [
        ("run id", f"<code>{h.e(record.run_id)}</code>"),
        ("state", _state_badge(trigger.state)),
        ("run type", h.e(trigger.run_type or "-")),
        (
            "triggered by",
            h.e(trigger.triggered_by or "-") + (f" (user {h.e(trigger.user)})" if trigger.user else ""),
        ),
        ("logical date", h.e(h.when(trigger.logical_date))),
        ("started", h.e(h.when(trigger.start))),
        ("ended", h.e(h.when(trigger.end))),
    ]
    body = h.facts(items)
    if trigger.params:
        rows = [
            (
                f"<code>{h.e(k)}</code>",
                f"<code>{h.e(_plain(v))}</code>",
                "set at trigger" if k in trigger.conf else "default",
            )
            for k, v in sorted(trigger.params.items())
        ]
        body += h.table(("parameter", "value", "source"), rows, caption="Parameters")
    if trigger.tasks:
        rows = [
            (
                h.link(t.url, t.task_id),
                _state_badge(t.state),
                h.e(t.try_number if t.try_number is not None else "-"),
            )
            for t in trigger.tasks
        ]
        body += h.table(("task", "state", "try"), rows, caption="Tasks")
    return h.section("trigger", "Trigger and parameters", body)


def _dataset_section(record: RunRecord) -> str:
    ingest = record.ingest
    if not ingest:
        return h.section("dataset", "Dataset snapshot", _not_run("ingest"))
    rows = ingest.get("rows") or {}
    items = [
        ("snapshot", f"<code>{h.e(ingest.get('snapshot_key'))}</code>"),
        ("content hash", f"<code>{h.e(str(ingest.get('snapshot_hash', ''))[:16])}</code>"),
        (
            "rows",
            " / ".join(
                f"{h.e(split)} {h.count(rows.get(split))}" for split in ("train", "validation", "test")
            ),
        ),
    ]
    source = ingest.get("source") or {}
    if source.get("kind"):
        items.append(
            (
                "source",
                h.e(source.get("kind"))
                + (f" <code>{h.e(source.get('uri'))}</code>" if source.get("uri") else ""),
            )
        )
    if source.get("partition"):
        items.append(("partition", h.e(source["partition"])))
    return h.section("dataset", "Dataset snapshot", h.facts(items))


def _validation_section(record: RunRecord, artifact_url: UrlFor) -> str:
    validate = record.validate
    if not validate:
        return h.section("validation", "Data validation", _not_run("validate"))
    ok = bool(validate.get("success"))
    failed = validate.get("failed_expectations", len(validate.get("failed") or []))
    head = (
        f"<p>{h.verdict(h.PASS if ok else h.FAIL, 'PASSED' if ok else 'FAILED')} "
        f"{h.count(validate.get('evaluated_expectations'))} checks on {h.count(validate.get('rows'))} rows, "
        f"{h.count(failed)} failed. {h.link(artifact_url(validate.get('data_docs_key') or ''), 'Data Docs')}</p>"
    )
    messages = validate.get("failure_messages") or []
    body = head
    if messages:
        body += "<p><b>Failed checks</b></p><ul>" + "".join(f"<li>{h.e(m)}</li>" for m in messages) + "</ul>"
    drift = (validate.get("drift") or {}).get("statistics") or {}
    if drift:
        rows = [
            (
                h.e(name),
                f"<span class='n'>{h.num(stat.get('value'))}</span>",
                h.num(stat.get("effective_threshold", stat.get("threshold"))),
                h.verdict(
                    h.PASS if stat.get("passed", True) else h.FAIL,
                    "within" if stat.get("passed", True) else "drifted",
                ),
                h.e(stat.get("description")),
            )
            for name, stat in sorted(drift.items())
            if isinstance(stat, dict)
        ]
        body += h.table(
            ("drift statistic", "value", "threshold", "verdict", "what it measures"),
            rows,
            caption="Drift against the reference",
        )
    return h.section("validation", "Data validation", body)


def _training_section(record: RunRecord) -> str:
    train = record.train
    if not train:
        return h.section("training", "Training", _not_run("train"))
    history = train.get("history") or {}
    final = train.get("final_metrics") or {}
    resumed = train.get("resumed_from_epoch")
    summary = (
        f"<p>{h.count(train.get('epochs_completed'))} epochs in {h.e(h.seconds(train.get('training_seconds')))}"
        + (f", resumed from epoch {h.count(resumed)} after an interruption" if resumed else "")
        + f". Final train accuracy {h.num(final.get('accuracy'))}, validation accuracy "
        f"{h.num(final.get('val_accuracy'))}; train loss {h.num(final.get('loss'))}, validation loss "
        f"{h.num(final.get('val_loss'))}.</p>"
    )
    charts = (
        "<div class='charts'>"
        + "".join(
            line_chart(
                title,
                {"train": history.get(metric) or [], "validation": history.get(f"val_{metric}") or []},
                y_label=metric,
            )
            for metric, title in (("loss", "Loss"), ("accuracy", "Accuracy"))
            if history.get(metric) or history.get(f"val_{metric}")
        )
        + "</div>"
    )
    epochs = max((len(v) for v in history.values() if isinstance(v, list)), default=0)
    names = [n for n in ("loss", "val_loss", "accuracy", "val_accuracy") if n in history] + sorted(
        n for n in history if n not in ("loss", "val_loss", "accuracy", "val_accuracy")
    )
    rows = [
        [f"<span class='n'>{k + 1}</span>"]
        + [h.num(history[n][k] if k < len(history[n]) else None) for n in names]
        for k in range(epochs)
    ]
    details = "<details><summary>Per-epoch values</summary>" + h.table(["epoch", *names], rows) + "</details>"
    return h.section("training", "Training", summary + charts + (details if epochs else ""))


def _evaluation_section(record: RunRecord, artifact_url: UrlFor) -> str:
    evaluation = record.evaluate
    if not evaluation:
        return h.section("evaluation", "Evaluation against the champion", _not_run("evaluate"))
    cand = evaluation.get("candidate") or {}
    champ = evaluation.get("champion")
    comparison = evaluation.get("comparison") or {}
    metrics = (("accuracy", "accuracy"), ("log loss", "log_loss"), ("expected calibration error", "ece"))
    if champ:
        rows = [
            (
                h.e(label),
                h.num(cand.get(key)),
                h.num(champ.get(key)),
                h.delta(_diff(cand.get(key), champ.get(key))),
            )
            for label, key in metrics
        ]
        table = h.table(
            ("metric", "candidate", f"champion v{champ.get('version')}", "candidate - champion"), rows
        )
        ci = comparison.get("bootstrap_ci") or {}
        stats = (
            f"<p>McNemar p = {h.num(comparison.get('mcnemar_p_value'))}; accuracy difference "
            f"{h.delta(comparison.get('accuracy_delta'))}, interval [{h.delta(ci.get('low'))}, {h.delta(ci.get('high'))}].</p>"
        )
    else:
        table = h.table(
            ("metric", "candidate"), [(h.e(label), h.num(cand.get(key))) for label, key in metrics]
        )
        stats = "<p>No champion yet: the candidate is judged on the absolute checks alone.</p>"
    weakest = min(
        (c for c in cand.get("per_class") or [] if isinstance(c.get("recall"), int | float)),
        key=lambda c: c["recall"],
        default=None,
    )
    if weakest is not None:
        stats += (
            f"<p>Candidate's weakest class: <b>{h.e(weakest.get('name', weakest.get('class')))}</b>"
            f" (recall {h.num(weakest['recall'])}, {h.count(weakest.get('support'))} examples).</p>"
        )
    where = (
        f"<p class='meta'>Both scored on the same {h.count(evaluation.get('test_rows'))} test examples of "
        f"<code>{h.e(evaluation.get('snapshot_key'))}</code>. "
        f"{h.link(artifact_url(evaluation.get('report_key') or ''), 'Evaluation report')}</p>"
    )
    return h.section("evaluation", "Evaluation against the champion", table + stats + where)


def _gate_section(record: RunRecord, artifact_url: UrlFor) -> str:
    blessing = record.blessing
    if not blessing:
        return h.section("gate", "Gate decision", _not_run("gate"))
    result = blessing.get("result") or ("blessed" if blessing.get("blessed") else "rejected")
    kind = {"blessed": h.PASS, "rejected": h.FAIL, "forced": h.WARN}.get(result, h.INFO)
    body = f"<p>{h.verdict(kind, result.upper())} decided {h.e(h.when(blessing.get('decided_at')))}.</p>"
    if blessing.get("forced"):
        body += (
            f"<p><b>Override</b> by {h.e(blessing.get('forced_by') or 'an unnamed user')}: "
            f"{h.e(blessing.get('force_reason'))}</p>"
        )
    reasons = blessing.get("reasons") or []
    if reasons:
        body += "<ul>" + "".join(f"<li>{h.e(r)}</li>" for r in reasons) + "</ul>"
    checks = [c for c in blessing.get("checks") or [] if isinstance(c, dict)]
    if checks:
        rows = [
            (
                h.e(c.get("name")),
                _value(c.get("observed")),
                _value(c.get("threshold")),
                h.verdict(_check_kind(c.get("verdict")), str(c.get("verdict", "-"))),
                h.e(c.get("detail")),
            )
            for c in checks
        ]
        body += h.table(("check", "observed", "threshold", "verdict", "detail"), rows, caption="Checks")
    if record.final_report_key:
        body += f"<p>{h.link(artifact_url(record.final_report_key), 'Report with the decision')}</p>"
    return h.section("gate", "Gate decision", body)


def _registry_section(record: RunRecord, artifact_url: UrlFor, model_url: str | None) -> str:
    if record.version is None:
        text = "<p>No version was registered by this run.</p>"
    else:
        text = (
            f"<p>Registered as <b>{h.e(record.model)} version {h.count(record.version)}</b>"
            f" ({h.link(artifact_url(f'registry/{record.model}/{record.version}/metadata.json'), 'metadata')}).</p>"
        )
    if record.moves:
        rows = [
            (
                h.e(m.get("alias")),
                h.e(_version(m.get("from_version"))),
                h.e(_version(m.get("to_version"))),
                h.e(h.when(m.get("at"))),
                h.e(m.get("actor")),
                h.e(m.get("reason")),
            )
            for m in record.moves
        ]
        text += h.table(
            ("alias", "from", "to", "when", "actor", "reason"), rows, caption="Aliases moved by this run"
        )
    text += (
        f"<p>The champion now is {h.e(_version(record.champion_now))}"
        + (f" ({h.link(model_url, 'history')})." if model_url else ".")
        + "</p>"
    )
    return h.section("registry", "Registered version", text)


def _rollout_section(rollout: dict[str, Any]) -> str:
    scalars = [(k, v) for k, v in rollout.items() if not isinstance(v, dict | list)]
    body = h.facts((k, h.e(_plain(v))) for k, v in scalars) if scalars else ""
    steps = [s for s in rollout.get("steps") or rollout.get("analyses") or [] if isinstance(s, dict)]
    if steps:
        columns = list(
            dict.fromkeys(k for s in steps for k, v in s.items() if not isinstance(v, dict | list))
        )
        rows = [[h.e(_plain(s.get(c))) for c in columns] for s in steps]
        body += h.table(["#", *columns], [[str(i + 1), *r] for i, r in enumerate(rows)], caption="Steps")
    return h.section("rollout", "Rollout", body or "<p>The rollout has recorded no steps yet.</p>")


def _reports_section(record: RunRecord, artifact_url: UrlFor) -> str:
    links = []
    if record.validate and record.validate.get("data_docs_key"):
        links.append(("Data Docs (validation)", record.validate["data_docs_key"]))
    if record.evaluate and record.evaluate.get("report_key"):
        links.append(("Evaluation report (before the gate)", record.evaluate["report_key"]))
    if record.final_report_key:
        links.append(("Evaluation report with the gate's decision", record.final_report_key))
    for step in ("ingest", "validate", "train", "evaluate"):
        if getattr(record, step) is not None:
            links.append((f"{step} result (JSON)", f"{record.prefix}/{step}/result.json"))
    if not links:
        return h.section("reports", "Detailed reports", "<p>No reports were written.</p>")
    items = "".join(
        f"<li>{h.link(artifact_url(key), label)} <code>{h.e(key)}</code></li>" for label, key in links
    )
    return h.section("reports", "Detailed reports", f"<ul>{items}</ul>")


# ----------------------------------------------------------------------------- helpers


def _not_run(step: str) -> str:
    return f"<p>{h.verdict(h.INFO, 'NOT RUN')} the {h.e(step)} step has not recorded a result.</p>"


def _state_badge(state: str | None) -> str:
    kind = {"success": h.PASS, "failed": h.FAIL, "upstream_failed": h.FAIL, "skipped": h.INFO}.get(
        str(state), h.WARN if state else h.INFO
    )
    return h.verdict(kind, str(state or "unknown"))


def _check_kind(verdict: Any) -> str:
    return {"pass": h.PASS, "fail": h.FAIL, "skipped": h.INFO}.get(str(verdict), h.WARN)


def _diff(a: Any, b: Any) -> float | None:
    return a - b if isinstance(a, int | float) and isinstance(b, int | float) else None


def _value(value: Any) -> str:
    return (
        h.num(value) if isinstance(value, int | float) and not isinstance(value, bool) else h.e(_plain(value))
    )


def _plain(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return h.num(value)
    return str(value)


def _version(value: Any) -> str:
    return "(none)" if value is None else f"v{value}"
