"""The sweep's report: one self-contained HTML page (figures embedded as PNG) a person reads.

Sections: the outcome in one line, the trial table (parameters, validation figures, state,
duration, why it stopped), the optimisation history (each trial's validation accuracy and the
best so far), every trial's per-epoch validation curve (pruned trials stop early), and the
parameters' importances (Optuna's fANOVA evaluator over the complete trials).
"""

from __future__ import annotations

import base64
import html
import math
from typing import Any

from matplotlib.figure import Figure

from slipway.config import PipelineConfig, TuningConfig
from slipway.evaluation.figures import to_png
from slipway.tuning import study as records

_COLORS = {
    records.COMPLETE: "#1f77b4",
    records.PRUNED: "#ff7f0e",
    records.FAILED: "#d62728",
    records.SKIPPED: "#999999",
}

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1150px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0; font-size: .88em; }
th, td { border: 1px solid #ccc; padding: .2em .5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } tr.best td { background: #eef8ee; font-weight: bold; }
tr.pruned td { color: #8a4b00; } tr.failed td { background: #fbeeee; } tr.skipped td { color: #777; }
img { max-width: 100%; display: block; margin: .5em 0; } .why { color: #444; }
"""


def render_study_report(
    config: PipelineConfig, index: dict[str, Any], trials: dict[int, dict[str, Any] | None]
) -> str:
    tuning = config.tuning
    assert tuning is not None
    best = records.best_trial(index)
    best_number = best[0] if best else None
    counts: dict[str, int] = {}
    for entry in index["trials"].values():
        counts[entry["state"]] = counts.get(entry["state"], 0) + 1
    headline = (
        f"best trial {best_number}: validation accuracy {best[1]['value']:.4f}"
        if best
        else "no trial completed"
    )
    body = [
        f"<h1>Sweep {_e(index['study_id'])} of {_e(config.model_name)}</h1>",
        f"<p><b>{_e(headline)}</b> &mdash; trials: "
        + ", ".join(f"{_e(k)} {v}" for k, v in sorted(counts.items()))
        + f". Sampler {_e(tuning.sampler)} (seed {tuning.seed}), pruner {_e(tuning.pruner.kind)}; "
        "selection on the validation split only (the test split and the golden set are the gate's).</p>",
        _section(
            "Trials",
            "One row per trial slot. Validation accuracy is the last epoch's; pruned trials were "
            "stopped early because their curve fell behind the completed trials' at the same epoch.",
            _trial_table(index, trials, best_number),
        ),
        _section(
            "Optimisation history",
            "Each trial's validation accuracy in the order trials were numbered, and the best so far.",
            _img(_history_figure(index, trials)),
        ),
        _section(
            "Validation curves",
            "Validation accuracy after each epoch; the pruner compares a running trial with these.",
            _img(_curves_figure(trials)),
        ),
        _section(
            "Parameter importances",
            "How much of the variation in validation accuracy each parameter explains (fANOVA over "
            "the complete trials). Few trials make this a rough guide, not a measurement.",
            _importances(tuning, trials),
        ),
    ]
    title = f"Sweep {index['study_id']}"
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _trial_table(index: dict[str, Any], trials: dict[int, dict[str, Any] | None], best: int | None) -> str:
    names = sorted({k for t in trials.values() if t for k in (t.get("params") or {})})
    head = "".join(
        f"<th>{_e(h)}</th>"
        for h in ["trial", "state", "val accuracy", "epochs run", "seconds", "attempts", *names, "note"]
    )
    rows = []
    for key in sorted(index["trials"], key=int):
        entry = index["trials"][key]
        trial = trials.get(int(key)) or {}
        params = trial.get("params") or {}
        cells = [
            key,
            entry.get("state"),
            _num(entry.get("value")),
            trial.get("epochs_completed", "-"),
            _num(trial.get("duration_s"), 1),
            entry.get("attempts", "-"),
            *[_param(params.get(n)) for n in names],
            trial.get("reason") or entry.get("error") or "",
        ]
        css = "best" if best is not None and int(key) == best else entry.get("state", "")
        rows.append(f"<tr class='{_e(css)}'>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _history_figure(index: dict[str, Any], trials: dict[int, dict[str, Any] | None]) -> bytes:
    fig = Figure(figsize=(8, 3.6))
    ax = fig.subplots()
    best_so_far, best_line = -math.inf, []
    for number in sorted(int(k) for k in index["trials"]):
        entry = index["trials"][str(number)]
        trial = trials.get(number) or {}
        state = entry.get("state")
        value = entry.get("value")
        if value is None and trial.get("intermediate_values"):
            curve = trial["intermediate_values"]
            value = curve[max(curve, key=int)]
        if value is not None:
            ax.scatter([number], [value], color=_COLORS.get(state, "#333"), s=36, zorder=3)
        if state == records.COMPLETE and value is not None:
            best_so_far = max(best_so_far, value)
        best_line.append(best_so_far if best_so_far > -math.inf else math.nan)
    ax.plot(sorted(int(k) for k in index["trials"]), best_line, color="#2ca02c", label="best so far")
    for state, color in _COLORS.items():
        ax.scatter([], [], color=color, label=state)
    ax.set_xlabel("trial")
    ax.set_ylabel("validation accuracy")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return to_png(fig)


def _curves_figure(trials: dict[int, dict[str, Any] | None]) -> bytes:
    fig = Figure(figsize=(8, 3.6))
    ax = fig.subplots()
    for number, trial in sorted(trials.items()):
        curve = (trial or {}).get("intermediate_values") or {}
        if not curve:
            continue
        steps = sorted(curve, key=int)
        state = trial["state"] if trial else ""
        ax.plot(
            [int(s) for s in steps],
            [curve[s] for s in steps],
            marker="o",
            markersize=3,
            color=_COLORS.get(state, "#333"),
            linestyle="--" if state == records.PRUNED else "-",
            alpha=0.8,
        )
        ax.annotate(str(number), (int(steps[-1]), curve[steps[-1]]), fontsize=7)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    return to_png(fig)


def _importances(tuning: TuningConfig, trials: dict[int, dict[str, Any] | None]) -> str:
    import optuna

    from slipway.tuning.engine import in_memory_study

    history = [
        {"number": n, "params": t["params"], "result": t}
        for n, t in sorted(trials.items())
        if t and t.get("state") in (records.COMPLETE, records.PRUNED, records.FAILED)
    ]
    study = in_memory_study(tuning, history)
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return "<p class='why'>Needs at least two complete trials.</p>"
    try:
        importances = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=tuning.seed)
        )
    except (RuntimeError, ValueError) as exc:
        return f"<p class='why'>Not computed: {_e(exc)}</p>"
    fig = Figure(figsize=(7, 0.4 * max(len(importances), 3) + 1))
    ax = fig.subplots()
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names], color="#1f77b4")
    ax.set_xlabel("importance (share of variance)")
    ax.grid(alpha=0.3, axis="x")
    table = "".join(f"<tr><td>{_e(n)}</td><td>{v:.3f}</td></tr>" for n, v in importances.items())
    return _img(to_png(fig)) + f"<table><tr><th>parameter</th><th>importance</th></tr>{table}</table>"


def _section(title: str, why: str, body: str) -> str:
    return f"<section><h2>{_e(title)}</h2><p class='why'>{_e(why)}</p>{body}</section>"


def _img(png: bytes) -> str:
    return f"<img alt='figure' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


def _param(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "-" if value is None else str(value)


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
