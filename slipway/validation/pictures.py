"""The validation report a reviewer looks at: ``validate/report.html``.

Numbers say *that* a structural check failed; a picture says *what* happened - content moved to
the right, a class that now looks like another one, strokes where there were garments. For each
failed structural check the page shows the reference's and the partition's mean image (or std
image, or row / column profile curves) side by side with their difference, for the worst class
when the check is class-conditional. Every statistic is listed with its threshold, and the
champion witness's figures when there was one.

Drawn with matplotlib's object API (no pyplot state), like ``slipway.evaluation.figures``.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np

from slipway.data.structure import profiles_of
from slipway.validation.drift import DriftStatistic
from slipway.validation.report import ValidationReport

_KIND = {
    "pixel_mean_map": ("mean_map", "mean image"),
    "pixel_std_map": ("std_map", "std image"),
    "row_profile": ("row", "row intensity profile"),
    "column_profile": ("column", "column intensity profile"),
}


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    return f"<img alt='structure' src='data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}'>"


def _maps_figure(reference: np.ndarray, current: np.ndarray, grid: list[int] | None, what: str) -> str:
    from matplotlib.figure import Figure

    diff = current - reference
    fig = Figure(figsize=(10, 3.2))
    if grid is None:
        ax = fig.add_subplot(1, 2, 1)
        ax.plot(reference, label="reference")
        ax.plot(current, label="this partition")
        ax.set_title(what)
        ax.legend()
        ax2 = fig.add_subplot(1, 2, 2)
        ax2.plot(diff, color="crimson")
        ax2.set_title("difference (partition - reference)")
        return _png(fig)
    h, w = int(grid[0]), int(grid[1])
    images = [a.reshape(h, w, -1).mean(axis=2) for a in (reference, current, diff)]
    top = float(max(images[0].max(), images[1].max(), 1e-9))
    span = float(np.abs(images[2]).max()) or 1e-9
    titles = (f"reference {what}", f"this partition's {what}", "difference (partition - reference)")
    for i, (image, title) in enumerate(zip(images, titles, strict=True)):
        ax = fig.add_subplot(1, 3, i + 1)
        if i < 2:
            shown = ax.imshow(image, cmap="gray_r", vmin=0, vmax=top)
        else:
            shown = ax.imshow(image, cmap="RdBu_r", vmin=-span, vmax=span)
        fig.colorbar(shown, ax=ax, fraction=0.046)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    return _png(fig)


def _profile_figure(reference: np.ndarray, current: np.ndarray, what: str) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.2))
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(reference, label="reference", marker=".")
    ax.plot(current, label="this partition", marker=".")
    ax.set_title(what)
    ax.set_xlabel("index")
    ax.legend()
    ax2 = fig.add_subplot(1, 2, 2)
    ax2.bar(range(len(reference)), current - reference, color="crimson")
    ax2.set_title("difference (partition - reference)")
    return _png(fig)


def structure_picture(stat: DriftStatistic, moments: dict[str, Any], reference: dict[str, Any]) -> str | None:
    """The picture of one structural statistic (HTML ``<img>``), None if it is not structural."""
    kind_name = stat.name.removeprefix("structure_").removeprefix("class_")
    if kind_name not in _KIND or not stat.name.startswith(("structure_", "class_")):
        return None
    kind, what = _KIND[kind_name]
    if stat.label is not None:
        current, ref = moments["classes"].get(stat.label), reference["classes"].get(stat.label)
        what = f"{what}, class {stat.label}"
    else:
        current, ref = moments["all"], reference["all"]
    if current is None or ref is None:
        return None
    grid = reference.get("grid")
    if kind in ("mean_map", "std_map"):
        return _maps_figure(np.asarray(ref[kind]), np.asarray(current[kind]), grid, what)
    if grid is None:
        return None
    new_profile = profiles_of(current["mean_map"], grid)[kind]
    return _profile_figure(np.asarray(ref[f"{kind}_profile"]["mean"]), new_profile, what)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def render_validation_report(report: ValidationReport, class_names: list[str] | None = None) -> str:
    """The whole page: verdict, every statistic with its threshold, pictures of failed structure."""
    verdict = "PASSED" if report.success else "FAILED"
    parts = [f"<h1>Validation {verdict}</h1><p>{_e(report.summary())}</p>"]
    if report.failed:
        parts.append(
            "<h2>Failed checks</h2><ul>"
            + "".join(f"<li>{_e(o.message)}</li>" for o in report.failed)
            + "</ul>"
        )
    rows = "".join(
        f"<tr class='{'pass' if d.passed else 'fail'}'><td>{_e(d.group)}.{_e(d.name)}</td><td>{d.value:.4f}</td>"
        f"<td>{d.effective_threshold:.4f}</td><td>{d.threshold:g}</td><td>{d.noise_floor:.4f}</td>"
        f"<td>{_e(d.detail)}</td></tr>"
        for d in report.drift
    )
    if rows:
        parts.append(
            "<h2>Drift, structure and champion witness</h2><table><tr><th>check</th><th>observed</th>"
            "<th>held to</th><th>configured</th><th>noise floor</th><th>detail</th></tr>" + rows + "</table>"
        )
    else:
        parts.append(f"<p>No drift statistics: {_e(report.reference.get('status', 'no reference'))}</p>")
    failed_structure = [
        d for d in report.drift if not d.passed and d.name.startswith(("structure_", "class_"))
    ]
    if failed_structure and report.structure is not None and report.reference_structure is not None:
        parts.append(
            "<h2>What moved</h2><p>For each failed structural check: the reference and this partition"
            " side by side, and their difference (red: more ink now, blue: less).</p>"
        )
        for stat in failed_structure:
            picture = structure_picture(stat, report.structure, report.reference_structure)
            if picture:
                parts.append(
                    f"<h3>{_e(stat.group)}.{_e(stat.name)}: {stat.value:.3f} > {stat.effective_threshold:.3f}</h3>"
                )
                parts.append(f"<p>{_e(stat.detail)}</p>{picture}")
    css = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;font-size:.9em}"
        "tr.fail td{background:#fbe3e3}img{max-width:100%}"
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>Validation report</title>"
        f"<style>{css}</style></head><body>{''.join(parts)}</body></html>\n"
    )
