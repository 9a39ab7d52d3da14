"""One self-contained HTML evaluation report per candidate: numbers, figures and the gate decision.

Self-contained (PNG figures inlined as base64, CSS inline, no scripts or external assets) so the
file can be stored with the model version, opened from the artifact store or an Airflow link, and
still render years later.

The report is written by the evaluate step *before* the gate decides; the gate runs later in the
Airflow worker. The report therefore carries a marked placeholder for the decision, and
``add_blessing_to_report(html, blessing)`` swaps the Blessing table in. That function and
``render_blessing_html`` are plain string work (no matplotlib, no TensorFlow), so the orchestrator
can attach the decision without the step image; ``render_report(data, blessing)`` renders the
whole report with the decision in one go when both are at hand.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from slipway.evaluation.explain import Attributions
from slipway.evaluation.gate import Blessing
from slipway.evaluation.metrics import ClassificationMetrics, most_confused_pairs
from slipway.evaluation.scoring import LatencyStats, ModelSize
from slipway.evaluation.statistics import BootstrapInterval, McNemarResult

BLESSING_START = "<!-- slipway:blessing:start -->"
BLESSING_END = "<!-- slipway:blessing:end -->"
CONFUSED_PAIRS = 6
EXAMPLES_PER_PAIR = 6


@dataclass(frozen=True)
class ModelView:
    """One model's numbers as the report shows them."""

    label: str  # "candidate", "champion v3"
    metrics: ClassificationMetrics
    version: int | None = None
    latency: LatencyStats | None = None
    size: ModelSize | None = None


@dataclass(frozen=True)
class GoldenView:
    """Both models on the pipeline's golden set, shown beside their new-split figures."""

    description: str
    candidate: ClassificationMetrics
    champion: ClassificationMetrics | None = None


@dataclass(frozen=True)
class ReportData:
    """Everything ``render_report`` needs; computed by the evaluate step."""

    model_name: str
    run_id: str
    snapshot_key: str
    x_test: np.ndarray
    y_test: np.ndarray
    candidate: ModelView
    champion: ModelView | None = None
    mcnemar: McNemarResult | None = None
    bootstrap: BootstrapInterval | None = None
    class_names: Sequence[str] | None = None
    # Integrated-gradients maps of the candidate for the test rows at ``explained``.
    explained: np.ndarray | None = None
    attributions: Attributions | None = None
    significance_level: float = 0.05
    golden: GoldenView | None = None


def image_shape(input_shape: Sequence[int]) -> tuple[int, ...] | None:
    """The shape to draw an example with, or None when the input is not an image."""
    shape = tuple(input_shape)
    if len(shape) == 2:
        return shape
    if len(shape) == 3 and shape[-1] in (1, 3):
        return shape if shape[-1] == 3 else shape[:2]
    return None


def render_report(data: ReportData, blessing: Blessing | None = None) -> str:
    """The whole report as one HTML string (needs matplotlib)."""
    from slipway.evaluation import figures

    names = _names(data)
    models = [(data.candidate.label, data.candidate.metrics)]
    if data.champion is not None:
        models.append((data.champion.label, data.champion.metrics))
    is_image = image_shape(data.x_test.shape[1:]) is not None
    title = f"Evaluation of {data.model_name} - run {data.run_id}"
    parts = [
        f"<h1>{_e(title)}</h1>",
        "<p class='meta'>"
        f"Test set: <code>{_e(data.snapshot_key)}</code>, {len(data.y_test):,} examples, "
        f"{len(names)} classes. Generated {datetime.now(UTC).isoformat(timespec='seconds')}.</p>",
        _section(
            "Gate decision",
            "The gate judges the candidate on the numbers below against the pipeline's gate policy.",
            BLESSING_START
            + (render_blessing_html(blessing) if blessing else _pending_blessing())
            + BLESSING_END,
        ),
        _summary_section(data, names),
        _golden_section(data),
        _section(
            "Confusion matrices",
            "Rows are the true class, columns the predicted class. Colour is the share of the true "
            "class (so a small class is as visible as a large one); the number is the count. "
            "Everything off the diagonal is a mistake.",
            _img(figures.confusion_matrices(models, names), "confusion matrices"),
        ),
        _section(
            "Per-class precision, recall and F1",
            "Precision: of the examples predicted as a class, the share that truly are. Recall: of "
            "the examples of a class, the share found. F1 is their harmonic mean. A class the "
            "candidate handles worse than the champion shows as a shorter blue bar.",
            _img(figures.per_class_bars(models, names), "per-class bars") + _per_class_table(data, names),
        ),
        _section(
            "Calibration",
            "Are the model's probabilities honest? Predictions are grouped by confidence (15 bins); "
            "a calibrated model is right 80% of the time when it says 80%, so its curve follows the "
            "diagonal. Expected calibration error (ECE) is the example-weighted gap. The lower panel "
            "shows how many predictions fall in each bin.",
            _img(figures.reliability_diagram(models), "reliability diagram"),
        ),
        _confused_section(data, names, is_image),
        _explanation_section(data, names, is_image),
    ]
    return _page(title, "\n".join(parts))


def _golden_section(data: ReportData) -> str:
    """Golden set and new split side by side: a model that holds up on the golden set but not on
    the new split points at the new data; a candidate that does well only on the new split learned
    something the golden set disagrees with."""
    why = (
        "The golden set is pinned per pipeline and never comes from the feed; the gate's"
        " non-regression decision uses it. A champion much worse on the new split than on the"
        " golden set means the new data is suspect."
    )
    if data.golden is None:
        return _section("Golden set vs new split", why, "<p class='note'>No golden set yet.</p>")
    rows = [("candidate", data.golden.candidate, data.candidate.metrics)]
    if data.champion is not None and data.golden.champion is not None:
        rows.append((data.champion.label, data.golden.champion, data.champion.metrics))
    body = (
        f"<p class='meta'>Golden set: {_e(data.golden.description)}, {len(data.golden.candidate.correct):,}"
        f" examples. New split: {len(data.y_test):,} examples.</p><table><tr><th>model</th>"
        "<th>accuracy, golden</th><th>accuracy, new split</th><th>new - golden</th>"
        "<th>log loss, golden</th><th>log loss, new split</th></tr>"
    )
    for label, golden, new in rows:
        body += (
            f"<tr><td>{_e(label)}</td><td>{golden.accuracy:.4f}</td><td>{new.accuracy:.4f}</td>"
            f"<td>{new.accuracy - golden.accuracy:+.4f}</td><td>{_num(golden.log_loss)}</td>"
            f"<td>{_num(new.log_loss)}</td></tr>"
        )
    from slipway.evaluation import figures

    png = figures.golden_vs_new([(label, golden.accuracy, new.accuracy) for label, golden, new in rows])
    return _section("Golden set vs new split", why, body + "</table>" + _img(png, "golden vs new split"))


def render_blessing_html(blessing: Blessing) -> str:
    """An HTML fragment with the decision, the reasons and every check (no matplotlib needed)."""
    state = blessing.result
    headline = {
        "blessed": "BLESSED - the candidate may be deployed",
        "rejected": "REJECTED - the candidate will not be deployed; the champion stays",
        "forced": "FORCED - deployed by a person's override despite the policy",
    }[state]
    rows = "".join(
        f"<tr class='{_e(c.verdict)}'><td>{_e(c.name)}</td><td>{_num(c.observed)}</td>"
        f"<td>{_num(c.threshold)}</td><td>{_e(c.verdict)}</td><td>{_e(c.detail)}</td></tr>"
        for c in blessing.checks
    )
    reasons = "".join(f"<li>{_e(r)}</li>" for r in blessing.reasons)
    forced = ""
    if blessing.forced:
        forced = (
            f"<p><b>Override</b> by {_e(blessing.forced_by or 'an unnamed user')}: "
            f"{_e(blessing.force_reason or '')} (policy alone would have "
            f"{'blessed' if blessing.policy_passed else 'rejected'} it).</p>"
        )
    return (
        f"<div class='blessing {state}'><p class='verdict'>{_e(headline)}</p>{forced}"
        f"<ul>{reasons}</ul>"
        "<table><tr><th>check</th><th>observed</th><th>threshold</th><th>verdict</th><th>detail</th></tr>"
        f"{rows}</table><p class='meta'>Decided {_e(blessing.decided_at)}.</p></div>"
    )


def add_blessing_to_report(report_html: str, blessing: Blessing) -> str:
    """Put ``blessing`` into a report written by the evaluate step (replaces any earlier one)."""
    start = report_html.find(BLESSING_START)
    end = report_html.find(BLESSING_END)
    if start < 0 or end < start:
        raise ValueError("not a Slipway evaluation report: no gate decision placeholder found")
    return report_html[: start + len(BLESSING_START)] + render_blessing_html(blessing) + report_html[end:]


# --------------------------------------------------------------------------- sections


def _summary_section(data: ReportData, names: list[str]) -> str:
    cand, champ = data.candidate, data.champion
    rows = [
        ("accuracy", lambda v: v.metrics.accuracy, "{:.4f}"),
        ("log loss", lambda v: v.metrics.log_loss, "{:.4f}"),
        ("expected calibration error", lambda v: v.metrics.ece, "{:.4f}"),
        ("macro F1", lambda v: float(np.mean(v.metrics.f1)), "{:.4f}"),
        ("lowest class recall", lambda v: float(np.nanmin(v.metrics.recall)), "{:.4f}"),
        ("latency per batch (ms)", lambda v: v.latency and v.latency.ms_per_batch, "{:.3f}"),
        ("latency per example (ms)", lambda v: v.latency and v.latency.ms_per_example, "{:.4f}"),
        ("model.keras size (MB)", lambda v: v.size and v.size.model_file_bytes / 1e6, "{:.3f}"),
        ("all model files (MB)", lambda v: v.size and v.size.artifact_bytes / 1e6, "{:.3f}"),
    ]
    head = "<tr><th>metric</th><th>candidate</th>"
    head += f"<th>{_e(champ.label)}</th><th>candidate - champion</th></tr>" if champ else "</tr>"
    body = ""
    for label, get, fmt in rows:
        c = get(cand)
        line = f"<tr><td>{_e(label)}</td><td>{_fmt(c, fmt)}</td>"
        if champ:
            h = get(champ)
            delta = fmt.replace("{:", "{:+") if c is not None and h is not None else None
            line += f"<td>{_fmt(h, fmt)}</td><td>{_fmt(c - h, delta) if delta else '-'}</td>"
        body += line + "</tr>"
    batch = cand.latency.batch_size if cand.latency else None
    note = (
        f"<p class='meta'>Latency: median of timed forward passes on batches of {batch} examples after "
        "a warm-up, on the machine that ran the evaluate step.</p>"
        if batch
        else ""
    )
    if champ is None:
        stats = (
            "<p><b>No champion</b>: this is the first model of the pipeline, so there is nothing to "
            "compare against. The gate judges it on the absolute checks alone.</p>"
        )
    else:
        stats = _statistics_html(data)
    explanation = (
        "Both models are scored on the same test set, the test split of this run's snapshot (the champion is re-scored, "
        "never compared with an old number)."
    )
    return _section("Champion vs candidate", explanation, f"<table>{head}{body}</table>{note}{stats}")


def _statistics_html(data: ReportData) -> str:
    parts = []
    if data.mcnemar is not None:
        m = data.mcnemar
        verdict = "significant" if m.p_value < data.significance_level else "not significant"
        parts.append(
            f"<p><b>McNemar's exact test</b>: {m.candidate_only} examples only the candidate gets right, "
            f"{m.champion_only} only the champion; p = {m.p_value:.4g} ({verdict} at "
            f"{data.significance_level}). Only the examples the two models disagree on say which is "
            "better; if both were equally good, each of them would be a coin flip.</p>"
        )
    if data.bootstrap is not None:
        b = data.bootstrap
        parts.append(
            f"<p><b>Accuracy difference</b> {b.estimate:+.4f}, {b.confidence:.0%} bootstrap interval "
            f"[{b.low:+.4f}, {b.high:+.4f}] ({b.samples} paired resamples of the test set). An interval "
            "that contains 0 means the test set cannot tell the models apart.</p>"
        )
    return "".join(parts)


def _per_class_table(data: ReportData, names: list[str]) -> str:
    cand, champ = data.candidate.metrics, data.champion.metrics if data.champion else None
    head = "<tr><th>class</th><th>support</th><th>precision</th><th>recall</th><th>F1</th>"
    head += "<th>champion recall</th><th>champion F1</th></tr>" if champ else "</tr>"
    rows = ""
    for k, name in enumerate(names):
        rows += (
            f"<tr><td>{_e(name)}</td><td>{int(cand.support[k])}</td><td>{cand.precision[k]:.3f}</td>"
            f"<td>{_num(cand.recall[k], 3)}</td><td>{cand.f1[k]:.3f}</td>"
        )
        if champ:
            rows += f"<td>{_num(champ.recall[k], 3)}</td><td>{champ.f1[k]:.3f}</td>"
        rows += "</tr>"
    return f"<details><summary>Table</summary><table>{head}{rows}</table></details>"


def _confused_section(data: ReportData, names: list[str], is_image: bool) -> str:
    from slipway.evaluation import figures

    metrics = data.candidate.metrics
    pairs = most_confused_pairs(metrics.confusion, CONFUSED_PAIRS)
    explanation = (
        "The candidate's most frequent mistakes: which true class it takes for which other class, "
        "and how often. Mistakes that look like plausible confusions are less worrying than ones "
        "that do not."
    )
    if not pairs:
        return _section(
            "Most confused pairs", explanation, "<p>The candidate makes no mistakes on this test set.</p>"
        )
    rows = "".join(
        f"<tr><td>{_e(names[t])}</td><td>{_e(names[p])}</td><td>{n}</td>"
        f"<td>{n / max(int(metrics.support[t]), 1):.1%}</td></tr>"
        for t, p, n in pairs
    )
    table = (
        "<table><tr><th>true class</th><th>predicted as</th><th>count</th><th>share of the class</th></tr>"
        f"{rows}</table>"
    )
    shape = image_shape(data.x_test.shape[1:])
    if not is_image or shape is None:
        return _section("Most confused pairs", explanation, table + _not_image_note())
    groups = []
    for t, p, n in pairs:
        idx = np.flatnonzero((data.y_test == t) & (metrics.predictions == p))[:EXAMPLES_PER_PAIR]
        groups.append((f"{names[t]} -> {names[p]} ({n})", data.x_test[idx].reshape(len(idx), *shape)))
    return _section(
        "Most confused pairs",
        explanation + " Each row shows test examples of one pair (true -> predicted).",
        table + _img(figures.example_grid(groups, EXAMPLES_PER_PAIR), "most confused examples"),
    )


def _explanation_section(data: ReportData, names: list[str], is_image: bool) -> str:
    from slipway.evaluation import figures

    heading = "What the model looks at (integrated gradients)"
    explanation = (
        "For a few test examples (half of them mistakes, when there are any), integrated gradients "
        "attribute the candidate's "
        "predicted probability to the input pixels: the gradient is averaged along a straight path "
        "from a black image to the input and multiplied by the pixel value. Red pixels push towards "
        "the predicted class, blue pixels against it. A model that relies on the strokes of the "
        "digit or object is behaving; one that lights up the background has learned a shortcut."
    )
    shape = image_shape(data.x_test.shape[1:])
    if not is_image or shape is None:
        return _section(heading, explanation, _not_image_note())
    if data.attributions is None or data.explained is None or not len(data.explained):
        return _section(
            heading, explanation, "<p class='note'>No attributions were computed for this run.</p>"
        )
    a = data.attributions
    idx = data.explained
    titles = [
        f"true {names[int(data.y_test[i])]}, predicted {names[int(t)]} ({p:.2f})"
        for i, t, p in zip(idx, a.target, a.probability, strict=True)
    ]
    images = data.x_test[idx].reshape(len(idx), *shape)
    maps = a.maps.reshape(len(idx), *shape)
    note = (
        f"<p class='meta'>Completeness check: attributions sum to the probability gained over the black "
        f"baseline within {float(np.max(a.convergence_delta)):.3g} (small is good).</p>"
    )
    return _section(
        heading, explanation, _img(figures.attribution_maps(images, maps, titles), "attributions") + note
    )


# --------------------------------------------------------------------------- html helpers


def _pending_blessing() -> str:
    return (
        "<div class='blessing pending'><p class='verdict'>PENDING - the gate decides after this report "
        "is written; the decision is added here when it is made.</p></div>"
    )


def _not_image_note() -> str:
    return "<p class='note'>The inputs are not images, so example pictures are not shown.</p>"


def _names(data: ReportData) -> list[str]:
    k = data.candidate.metrics.num_classes
    if data.class_names is not None and len(data.class_names) == k:
        return [str(n) for n in data.class_names]
    return [str(i) for i in range(k)]


def _section(title: str, explanation: str, body: str) -> str:
    return f"<section><h2>{_e(title)}</h2><p class='why'>{_e(explanation)}</p>{body}</section>"


def _img(png: bytes, alt: str) -> str:
    return f"<img alt='{_e(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value: float | None, fmt: str) -> str:
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else fmt.format(value)


def _num(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return f"{value:.{digits}g}" if abs(value) >= 1000 else f"{value:.{digits}f}"


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0; font-size: .92em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
img { max-width: 100%; display: block; margin: .5em 0; }
.why { color: #444; } .meta { color: #666; font-size: .88em; } .note { font-style: italic; color: #666; }
.blessing { padding: .5em 1em; border-radius: 4px; border: 1px solid #ccc; }
.blessing.blessed { background: #eef8ee; } .blessing.rejected { background: #fbeeee; }
.blessing.forced { background: #fff6e0; } .blessing.pending { background: #f3f3f3; }
.verdict { font-weight: bold; }
tr.fail td { background: #fbe3e3; } tr.pass td:nth-child(4) { color: #176117; }
tr.skipped td { color: #777; }
"""


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n{body}\n</body></html>\n"
    )
