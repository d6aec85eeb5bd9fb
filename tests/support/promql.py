"""Which series a PromQL expression reads: metric names, label matchers, grouping labels.

Enough of PromQL for our own dashboard and alert rules (promtool checks their syntax): every
metric they read is named `gitstage_*`, `process_*` or `python_*`, so no function or keyword
is ever taken for a metric.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

METRIC = re.compile(r"\b((?:gitstage|process|python)_[A-Za-z0-9_]*)(\{[^}]*\})?")
MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
LABEL_VALUES = re.compile(r"label_values\((\w+),\s*(\w+)\)")
# Grafana's variables, as a query would see them once Grafana substituted them.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__range": "6h",
    "$namespace": ".*",
    "$job": ".*",
}


@dataclass(frozen=True)
class Reference:
    metric: str
    labels: frozenset[str]  # label names its matchers name


@dataclass(frozen=True)
class Query:
    references: tuple[Reference, ...]
    grouping: frozenset[str]  # labels named by by/without/on/ignoring


def parse(expr: str) -> Query:
    references = tuple(
        Reference(m.group(1), frozenset(MATCHER.findall(m.group(2) or "")))
        for m in METRIC.finditer(expr)
    )
    grouping = frozenset(
        label.strip()
        for clause in GROUPING.findall(expr)
        for label in clause.split(",")
        if label.strip()
    )
    return Query(references, grouping)


def grafana_substituted(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr
