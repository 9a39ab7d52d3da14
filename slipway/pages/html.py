"""Small HTML building blocks shared by the run and model pages: one way to escape, to format a
number, a time and a verdict, so every page says the same thing the same way.

Rules the pages keep (issue 15, item 5):

* every value that comes from data, config or the store goes through ``e()`` (HTML-escaped,
  quotes included), so a class name or a description cannot inject markup;
* a verdict is a word and a symbol, never a colour alone (the colour only repeats it);
* proportions (accuracy, p-values' neighbours) have 4 decimals, deltas a sign, counts a thousands
  separator; times are shown in UTC with the zone written out.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

PASS, FAIL, WARN, INFO = "pass", "fail", "warn", "info"
_SYMBOL = {PASS: "\u2714", FAIL: "\u2718", WARN: "\u26a0", INFO: "\u2022"}  # check, cross, warning, bullet


def e(value: object) -> str:
    """HTML-escape anything for text and attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def num(value: Any, digits: int = 4) -> str:
    """A proportion or metric: fixed decimals; '-' when missing or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return "-"
    if math.isinf(value):
        return "\u221e" if value > 0 else "-\u221e"
    return f"{value:.{digits}f}"


def delta(value: Any, digits: int = 4) -> str:
    """A signed difference (+0.0123 / -0.0040)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return "-"
    return f"{value:+.{digits}f}"


def count(value: Any) -> str:
    """An integer count with thousands separators."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return "-"
    return f"{int(value):,}"


def seconds(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return f"{value:,.1f} s"


def when(value: Any) -> str:
    """An ISO time (or datetime) as ``YYYY-MM-DD HH:MM:SS UTC``; naive times are taken as UTC."""
    if value in (None, ""):
        return "-"
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def verdict(kind: str, text: str) -> str:
    """A verdict badge: symbol + word (+ colour), readable in greyscale and by a screen reader."""
    return f"<span class='badge {kind}'><span aria-hidden='true'>{_SYMBOL[kind]}</span> {e(text)}</span>"


def table(headers: Iterable[str], rows: Iterable[Iterable[str]], caption: str = "") -> str:
    """A table of already-rendered cells (cells are trusted HTML; escape values before)."""
    head = "".join(f"<th scope='col'>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    cap = f"<caption>{e(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def facts(items: Iterable[tuple[str, str]]) -> str:
    """A definition list of (label, rendered value)."""
    return "<dl class='facts'>" + "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def link(href: str | None, text: str) -> str:
    return f"<a href='{e(href)}'>{e(text)}</a>" if href else e(text)


def section(anchor: str, title: str, body: str) -> str:
    return f"<section id='{e(anchor)}' aria-labelledby='{e(anchor)}-h'><h2 id='{e(anchor)}-h'>{e(title)}</h2>{body}</section>"


CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 1.5em auto; padding: 0 1em;
       color: #1d1d1d; line-height: 1.45; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: .5em 0; font-size: .92em; }
caption { text-align: left; font-weight: bold; padding: .2em 0; }
th, td { border: 1px solid #bbb; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; }
dl.facts dt { font-weight: bold; } dl.facts dd { margin: 0; }
.badge { display: inline-block; padding: 0 .45em; border-radius: 3px; border: 1px solid; font-weight: bold;
         white-space: nowrap; }
.badge.pass { color: #0b5a0b; background: #e6f4e6; } .badge.fail { color: #8a1010; background: #fbe7e7; }
.badge.warn { color: #6b4a00; background: #fff3d6; } .badge.info { color: #333; background: #eee; }
.meta { color: #555; font-size: .88em; }
svg text { font-size: 11px; fill: #1d1d1d; }
code { font-size: .9em; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
"""


def page(title: str, body: str, *, nav: str = "") -> str:
    """A whole, self-contained page (inline CSS, no scripts, no external requests)."""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>\n"
        f"{nav}<main><h1>{e(title)}</h1>\n{body}\n</main></body></html>\n"
    )
