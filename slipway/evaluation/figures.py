"""The report's figures, drawn with matplotlib and returned as PNG bytes.

Uses ``matplotlib.figure.Figure`` directly instead of ``pyplot``: no global state, no GUI
backend to select, safe in a worker process. Only ``report.render_report`` imports this module,
so the Airflow image (no matplotlib) can still import ``slipway.evaluation.report`` to attach a
Blessing to an existing report.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from slipway.evaluation.metrics import ClassificationMetrics

CANDIDATE_COLOR = "#1f77b4"
CHAMPION_COLOR = "#ff7f0e"
_DPI = 90


def to_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return buffer.getvalue()


def confusion_matrices(
    models: Sequence[tuple[str, ClassificationMetrics]], class_names: Sequence[str]
) -> bytes:
    """Side-by-side confusion matrices; colour = share of the true class (row), text = count."""
    k = len(class_names)
    size = min(4.5 + 0.25 * k, 10)
    fig = Figure(figsize=(size * len(models), size))
    annotate = k <= 20
    for i, (label, metrics) in enumerate(models):
        ax = fig.add_subplot(1, len(models), i + 1)
        counts = metrics.confusion
        rows = counts.sum(axis=1, keepdims=True)
        share = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        ax.set_title(f"{label} (accuracy {metrics.accuracy:.4f})")
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        if k <= 30:
            slanted = k <= 10 and max(len(str(n)) for n in class_names) > 3  # long names would overlap
            ax.set_xticks(
                range(k),
                labels=class_names,
                rotation=90 if k > 10 else (45 if slanted else 0),
                ha="right" if slanted else "center",
                rotation_mode="anchor" if slanted else "default",
            )
            ax.set_yticks(range(k), labels=class_names)
        if annotate:
            for t in range(k):
                for p in range(k):
                    if counts[t, p]:
                        color = "white" if share[t, p] > 0.5 else "black"
                        ax.text(p, t, str(counts[t, p]), ha="center", va="center", fontsize=7, color=color)
    return to_png(fig)


def per_class_bars(models: Sequence[tuple[str, ClassificationMetrics]], class_names: Sequence[str]) -> bytes:
    """Precision, recall and F1 per class, one panel each, models side by side."""
    k = len(class_names)
    fig = Figure(figsize=(max(7.0, 0.45 * k * len(models) + 2), 8))
    width = 0.8 / len(models)
    colors = [CANDIDATE_COLOR, CHAMPION_COLOR]
    for row, (name, attr) in enumerate((("precision", "precision"), ("recall", "recall"), ("F1", "f1"))):
        ax = fig.add_subplot(3, 1, row + 1)
        for i, (label, metrics) in enumerate(models):
            values = np.nan_to_num(getattr(metrics, attr), nan=0.0)
            ax.bar(
                np.arange(k) + (i - (len(models) - 1) / 2) * width,
                values,
                width,
                label=label,
                color=colors[i],
            )
        low = min(np.nanmin(np.nan_to_num(getattr(m, attr), nan=1.0)) for _, m in models)
        ax.set_ylim(max(0.0, low - 0.05), 1.0)
        ax.set_ylabel(name)
        ax.set_xticks(range(k), labels=class_names if k <= 30 else [""] * k, rotation=90 if k > 10 else 0)
        ax.grid(axis="y", alpha=0.3)
        if row == 0:
            ax.legend(loc="lower right")
    fig.tight_layout()
    return to_png(fig)


def reliability_diagram(models: Sequence[tuple[str, ClassificationMetrics]]) -> bytes:
    """Accuracy against confidence per bin (a calibrated model lies on the diagonal) + histogram."""
    fig = Figure(figsize=(7, 7))
    top = fig.add_axes((0.1, 0.35, 0.85, 0.6))
    bottom = fig.add_axes((0.1, 0.08, 0.85, 0.2), sharex=top)
    top.plot([0, 1], [0, 1], color="gray", linestyle="--", label="perfect calibration")
    colors = [CANDIDATE_COLOR, CHAMPION_COLOR]
    for i, (label, metrics) in enumerate(models):
        bins = metrics.reliability
        filled = bins.count > 0
        top.plot(
            bins.confidence[filled],
            bins.accuracy[filled],
            marker="o",
            color=colors[i],
            label=f"{label} (ECE {metrics.ece:.4f})",
        )
        centers = (bins.edges[:-1] + bins.edges[1:]) / 2
        offset = (i - (len(models) - 1) / 2) * (bins.edges[1] - bins.edges[0]) / (len(models) + 1)
        bottom.bar(
            centers + offset,
            bins.count,
            width=(bins.edges[1] - bins.edges[0]) / (len(models) + 1),
            color=colors[i],
        )
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy in bin")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    bottom.set_yscale("log")
    bottom.set_xlabel("confidence (max softmax probability)")
    bottom.set_ylabel("examples")
    return to_png(fig)


def example_grid(rows: Sequence[tuple[str, np.ndarray]], columns: int = 6) -> bytes:
    """One row of example images per labelled group (for the most-confused pairs)."""
    fig = Figure(figsize=(1.4 * columns + 2.2, 1.5 * len(rows)))
    for r, (label, images) in enumerate(rows):
        for c in range(columns):
            ax = fig.add_subplot(len(rows), columns, r * columns + c + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                _show_image(ax, images[c])
            else:
                ax.axis("off")
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    return to_png(fig)


def attribution_maps(images: np.ndarray, maps: np.ndarray, titles: Sequence[str]) -> bytes:
    """Per example: the input, the signed attribution map, and the positive evidence overlaid."""
    n = len(images)
    fig = Figure(figsize=(7.5, 2.4 * n))
    for i in range(n):
        heat = maps[i].sum(axis=-1) if maps[i].ndim == 3 else maps[i]
        limit = float(np.abs(heat).max()) or 1.0
        source, signed, overlay = (fig.add_subplot(n, 3, 3 * i + j) for j in (1, 2, 3))
        _show_image(source, images[i])
        source.set_title(titles[i], fontsize=9)
        shown = signed.imshow(heat, cmap="bwr", vmin=-limit, vmax=limit)
        signed.set_title("attribution (red: for, blue: against)", fontsize=8)
        fig.colorbar(shown, ax=signed, fraction=0.046, pad=0.04)
        _show_image(overlay, images[i], alpha=0.6)
        overlay.imshow(np.ma.masked_less_equal(heat, 0), cmap="Reds", vmin=0, vmax=limit, alpha=0.8)
        overlay.set_title("positive evidence on the input", fontsize=8)
        for ax in (source, signed, overlay):
            ax.set_xticks([])
            ax.set_yticks([])
    return to_png(fig)


def _show_image(ax: Axes, image: np.ndarray, alpha: float = 1.0) -> None:
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        ax.imshow(img, cmap="gray_r", alpha=alpha)
    else:
        low, high = float(img.min()), float(img.max())
        ax.imshow((img - low) / ((high - low) or 1.0), alpha=alpha)


def golden_vs_new(rows: Sequence[tuple[str, float, float]]) -> bytes:
    """Accuracy of each model on the golden set and on the new split, as grouped bars."""
    fig = Figure(figsize=(6, 3))
    ax = fig.add_subplot(1, 1, 1)
    index = np.arange(len(rows))
    golden = [g for _, g, _ in rows]
    new = [n for _, _, n in rows]
    ax.bar(index - 0.2, golden, 0.4, label="golden set", color="#2ca02c")
    ax.bar(index + 0.2, new, 0.4, label="new split", color="#9467bd")
    for i, (g, n) in enumerate(zip(golden, new, strict=True)):
        ax.text(i - 0.2, g, f"{g:.3f}", ha="center", va="bottom", fontsize=8)
        ax.text(i + 0.2, n, f"{n:.3f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(index, labels=[label for label, _, _ in rows])
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("accuracy")
    ax.legend(loc="lower right")
    return to_png(fig)
