"""Helpers for the observability tests: the metric catalogue, dashboard queries, binaries."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = {
    "farm": ROOT / "farm" / "README.md",
    "aam": ROOT / "aam" / "README.md",
    "workflows": ROOT / "workflows" / "README.md",
}
DASHBOARD_DIR = ROOT / "grafana" / "dashboards"
RULES_FILE = ROOT / "deploy" / "prometheus" / "rules" / "gauntlet-topology.yml"

_ROW = re.compile(
    r"^\|\s*`(?P<name>[a-z_:]+)`\s*\|(?P<type>[^|]+)\|(?P<labels>[^|]*)\|(?P<meaning>.*)\|\s*$"
)


@dataclass(frozen=True)
class MetricContract:
    """One row of a metric table: name, type (counter/gauge/histogram), label names, meaning."""

    name: str
    type: str
    labels: tuple[str, ...]
    meaning: str


def metric_table(text: str) -> dict[str, MetricContract]:
    """Rows of every ``| `name` | type | labels | meaning |`` table in a Markdown text."""
    rows = {}
    for line in text.splitlines():
        match = _ROW.match(line)
        if not match:
            continue
        mtype = match["type"].strip().split()[0]
        if mtype not in ("counter", "gauge", "histogram"):
            continue
        labels = tuple(
            label.strip() for label in match["labels"].replace("—", "").split(",") if label.strip()
        )
        rows[match["name"]] = MetricContract(match["name"], mtype, labels, match["meaning"].strip())
    return rows


def contract_catalogue() -> dict[str, MetricContract]:
    """Every metric the three contract files declare, by name."""
    catalogue: dict[str, MetricContract] = {}
    for path in CONTRACTS.values():
        catalogue.update(metric_table(path.read_text()))
    return catalogue


def load_dashboards() -> dict[str, dict[str, Any]]:
    """The committed dashboards, by file name."""
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARD_DIR.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    out = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


@dataclass(frozen=True)
class PanelQuery:
    """One query of one panel."""

    dashboard: str
    panel: str
    panel_type: str
    ref_id: str
    expr: str
    instant: bool
    table: bool


def panel_queries() -> list[PanelQuery]:
    """Every query of every committed dashboard."""
    out = []
    for name, dash in load_dashboards().items():
        for panel in panels(dash):
            for target in panel.get("targets", []):
                out.append(
                    PanelQuery(
                        dashboard=name,
                        panel=panel.get("title", ""),
                        panel_type=panel.get("type", ""),
                        ref_id=target.get("refId", ""),
                        expr=target["expr"],
                        instant=bool(target.get("instant")) and not target.get("range"),
                        table=target.get("format") == "table",
                    )
                )
    return out


def substitute(expr: str, variables: dict[str, str], rate_interval: str) -> str:
    """Replace Grafana's variables the way Grafana would before sending the query."""
    expr = expr.replace("$__rate_interval", rate_interval)
    for name, value in variables.items():
        expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
    return expr


def require_binary(name: str) -> str:
    """Path of a system binary; skip without it, unless CI=true (then fail: CI must have it)."""
    path = shutil.which(name)
    if path:
        return path
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{name} is required in CI (make install-system installs it)")
    pytest.skip(f"{name} is not installed (make install-system)")
