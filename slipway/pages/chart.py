"""Training curves as an inline SVG line chart: no JavaScript, no plotting library, no request.

Why SVG written here: the run page is served by the Airflow API server, which has neither
matplotlib nor a CDN to load a charting script from. Series differ by line style *and* marker
(solid with circles for train, dashed with squares for validation), and the legend names them,
so the chart reads without colour. The numbers themselves are in a table below the chart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from slipway.pages.html import e, num

WIDTH, HEIGHT = 470, 250
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 26, 36
STYLES = {  # series -> (stroke, dash, marker)
    "train": ("#1f4e9c", "", "circle"),
    "validation": ("#b8540b", "6 4", "square"),
}


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + 1.0
    raw = (high - low) / (count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    first, last = math.floor(low / step), math.ceil(high / step)
    if last == first:
        last += 1
    return [round(k * step, 10) for k in range(first, last + 1)]


def line_chart(title: str, series: dict[str, Sequence[float | None]], *, y_label: str) -> str:
    """One panel: x = epoch (1..n), y = the metric; ``series`` maps 'train'/'validation' to values."""
    points = [
        v for values in series.values() for v in values if isinstance(v, int | float) and math.isfinite(v)
    ]
    epochs = max((len(v) for v in series.values()), default=0)
    if not points or epochs == 0:
        return f"<p class='meta'>No {e(title.lower())} values were recorded.</p>"
    ticks = _ticks(min(points), max(points))
    y_low, y_high = ticks[0], ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_at(epoch: int) -> float:
        return LEFT + (plot_w * (epoch - 1) / (epochs - 1) if epochs > 1 else plot_w / 2)

    def y_at(value: float) -> float:
        return TOP + plot_h * (1 - (value - y_low) / (y_high - y_low))

    parts = [
        f"<svg role='img' aria-labelledby='{_id(title)}' viewBox='0 0 {WIDTH} {HEIGHT}' width='{WIDTH}'"
        f" height='{HEIGHT}' xmlns='http://www.w3.org/2000/svg'>",
        f"<title id='{_id(title)}'>{e(title)} per epoch: {e(', '.join(series))}</title>",
        f"<text x='{LEFT}' y='16' font-weight='bold'>{e(title)}</text>",
        f"<rect x='{LEFT}' y='{TOP}' width='{plot_w}' height='{plot_h}' fill='none' stroke='#999'/>",
    ]
    for tick in ticks:
        y = y_at(tick)
        parts.append(f"<line x1='{LEFT}' x2='{LEFT + plot_w}' y1='{y:.1f}' y2='{y:.1f}' stroke='#e3e3e3'/>")
        parts.append(
            f"<text x='{LEFT - 4}' y='{y + 4:.1f}' text-anchor='end'>{_tick_label(tick, ticks)}</text>"
        )
    step = max(1, math.ceil(epochs / 10))
    for epoch in range(1, epochs + 1, step):
        parts.append(
            f"<text x='{x_at(epoch):.1f}' y='{TOP + plot_h + 14}' text-anchor='middle'>{epoch}</text>"
        )
    parts.append(f"<text x='{LEFT + plot_w / 2}' y='{HEIGHT - 4}' text-anchor='middle'>epoch</text>")
    parts.append(
        f"<text transform='translate(12 {TOP + plot_h / 2}) rotate(-90)' text-anchor='middle'>{e(y_label)}</text>"
    )
    legend_x = LEFT + plot_w - 190  # in the title row, so it never hides a curve
    for i, (name, values) in enumerate(series.items()):
        stroke, dash, marker = STYLES.get(name, ("#333", "2 2", "circle"))
        coords = [
            (x_at(k + 1), y_at(v))
            for k, v in enumerate(values)
            if isinstance(v, int | float) and math.isfinite(v)
        ]
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(
                f"<polyline fill='none' stroke='{stroke}' stroke-width='2' stroke-dasharray='{dash}' points='{path}'/>"
            )
        parts.extend(_marker(marker, x, y, stroke) for x, y in coords)
        lx, ly = legend_x + 80 * i, 12
        parts.append(
            f"<line x1='{lx}' x2='{lx + 24}' y1='{ly}' y2='{ly}' stroke='{stroke}' stroke-width='2'"
            f" stroke-dasharray='{dash}'/>"
        )
        parts.append(_marker(marker, lx + 12, ly, stroke))
        parts.append(f"<text x='{lx + 30}' y='{ly + 4}'>{e(name)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _marker(kind: str, x: float, y: float, stroke: str) -> str:
    if kind == "square":
        return f"<rect x='{x - 3:.1f}' y='{y - 3:.1f}' width='6' height='6' fill='white' stroke='{stroke}'/>"
    return f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3' fill='{stroke}'/>"


def _tick_label(value: float, ticks: list[float]) -> str:
    spread = ticks[-1] - ticks[0]
    digits = 0 if spread >= 10 else 1 if spread >= 1 else 2 if spread >= 0.1 else 3
    return num(value, digits)


def _id(title: str) -> str:
    return "chart-" + "".join(c if c.isalnum() else "-" for c in title.lower())
