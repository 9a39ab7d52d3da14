"""statsd_exporter's mapping semantics in Python, for testing monitoring/statsd/mapping.yml.

The statsd_exporter binary is not packaged for Debian here, so the test applies the mapping
file the way the exporter does: lines ``name[,tag=value...]:value|type`` with InfluxDB-style tags
becoming labels; mappings tried in order, first match wins; ``glob`` patterns where ``*`` matches
within one dot-separated component and ``$n`` in the name and labels refer to the n-th ``*``;
``regex`` patterns matched against the whole name; ``action: drop`` discards the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class StatsdLine:
    name: str
    tags: tuple[tuple[str, str], ...]
    value: float
    kind: str  # c, g, ms, h, d, s


@dataclass(frozen=True)
class Mapped:
    metric: str
    labels: tuple[tuple[str, str], ...]
    rule: int  # index of the mapping that matched


def parse_line(line: str) -> StatsdLine:
    head, _, rest = line.partition(":")
    name, *tags = head.split(",")
    value, _, kind = rest.partition("|")
    pairs = tuple(tuple(tag.split("=", 1)) for tag in tags)
    return StatsdLine(name, pairs, float(value), kind.split("|")[0])  # type: ignore[arg-type]


def _glob(pattern: str) -> re.Pattern[str]:
    parts = (re.escape(piece) for piece in pattern.split("*"))
    return re.compile("^" + "([^.]*)".join(parts) + "$")


class Mapping:
    def __init__(self, path: Path) -> None:
        config = yaml.safe_load(path.read_text())
        default_type = (config.get("defaults") or {}).get("match_type", "glob")
        self.rules = []
        for rule in config["mappings"]:
            kind = rule.get("match_type", default_type)
            pattern = _glob(rule["match"]) if kind == "glob" else re.compile(rule["match"])
            self.rules.append((pattern, rule))

    def apply(self, line: StatsdLine) -> Mapped | None:
        for index, (pattern, rule) in enumerate(self.rules):
            match = pattern.match(line.name)
            if not match:
                continue
            if rule.get("action") == "drop":
                return None
            groups = match.groups()

            def expand(text: str, groups: tuple[str, ...] = groups) -> str:
                return re.sub(r"\$\{?(\d+)\}?", lambda m: groups[int(m.group(1)) - 1], text)

            labels = dict(line.tags)
            labels.update({k: expand(str(v)) for k, v in (rule.get("labels") or {}).items()})
            return Mapped(expand(rule["name"]), tuple(sorted(labels.items())), index)
        return None
