"""Prometheus recording rules for the topology: per-node and per-edge rate, error ratio, health.

The Node Graph needs one row per node and per edge with an ``id`` (and ``source``/``target`` for
edges), a figure and a colour. Computing them here, once, keeps the dashboard queries short and
lets ``promtool test rules`` pin the colour thresholds down.

Node ids: ``svc:<service>`` (synthetic APIs, left), ``conn:<connector>`` (AAM connectors, middle),
``wf:<workflow>`` (workflows, right). Edge ids: ``<source>-><target>``; data flows left to right,
so a layered layout puts the columns in that order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import health

W = health.WINDOW
#: The workflow iteration outcome that counts as success (workflows/metrics.py: "ok", or the
#: error class that stopped the iteration).
WORKFLOW_SUCCESS = "ok"
#: The AAM call outcome that counts as success (aam/README.md).
CALL_SUCCESS = "success"


@dataclass(frozen=True)
class NodeKind:
    """One column of the topology: where its nodes and their figures come from."""

    prefix: str
    subtitle: str
    key: str
    total: str
    errors: str
    members: str


@dataclass(frozen=True)
class EdgeKind:
    """One kind of edge: a pair of node kinds and the counters on the wire between them."""

    source: NodeKind
    target: NodeKind
    total: str
    errors: str
    members: str


SERVICE = NodeKind(
    prefix="svc",
    subtitle="synthetic API",
    key="service",
    # A synthetic API's error ratio is its share of non-2xx answers (dropped connections included).
    total=f"sum by (service) (rate(gauntlet_farm_requests_total[{W}]))",
    errors=f'sum by (service) (rate(gauntlet_farm_requests_total{{code!~"2.."}}[{W}]))',
    members="group by (service) (gauntlet_farm_service_info)",
)
CONNECTOR = NodeKind(
    prefix="conn",
    subtitle="AAM connector",
    key="connector",
    # A connector is judged by the logical calls it failed, after its retries and defences.
    total=f"sum by (connector) (rate(aam_calls_total[{W}]))",
    errors=f'sum by (connector) (rate(aam_calls_total{{outcome!="{CALL_SUCCESS}"}}[{W}]))',
    members="group by (connector) (aam_connector_info)",
)
WORKFLOW = NodeKind(
    prefix="wf",
    subtitle="workflow",
    key="workflow",
    total=f"sum by (workflow) (rate(gauntlet_workflow_runs_total[{W}]))",
    errors=(
        "sum by (workflow) "
        f'(rate(gauntlet_workflow_runs_total{{outcome!="{WORKFLOW_SUCCESS}"}}[{W}]))'
    ),
    members="group by (workflow) (gauntlet_workflow_connector_info)",
)
NODE_KINDS = (SERVICE, CONNECTOR, WORKFLOW)

API_CALLS = EdgeKind(
    source=SERVICE,
    target=CONNECTOR,
    # The wire between a connector and its API: HTTP attempts, each retry counted.
    total=f"sum by (service, connector) (rate(aam_attempts_total[{W}]))",
    errors=f'sum by (service, connector) (rate(aam_attempts_total{{result!="2xx"}}[{W}]))',
    members="group by (service, connector) (aam_connector_info)",
)
WORKFLOW_CALLS = EdgeKind(
    source=CONNECTOR,
    target=WORKFLOW,
    total=f"sum by (connector, workflow) (rate(gauntlet_workflow_runs_total[{W}]))",
    errors=(
        "sum by (connector, workflow) "
        f'(rate(gauntlet_workflow_runs_total{{outcome!="{WORKFLOW_SUCCESS}"}}[{W}]))'
    ),
    members="group by (connector, workflow) (gauntlet_workflow_connector_info)",
)
EDGE_KINDS = (API_CALLS, WORKFLOW_CALLS)

NODE_REQUESTS = f"gauntlet:topology_node_requests:rate{W}"
NODE_ERRORS = f"gauntlet:topology_node_errors:rate{W}"
NODE_ERROR_RATIO = f"gauntlet:topology_node_error_ratio:rate{W}"
NODE_HEALTH = "gauntlet:topology_node_health"
EDGE_REQUESTS = f"gauntlet:topology_edge_requests:rate{W}"
EDGE_ERRORS = f"gauntlet:topology_edge_errors:rate{W}"
EDGE_ERROR_RATIO = f"gauntlet:topology_edge_error_ratio:rate{W}"
EDGE_HEALTH = "gauntlet:topology_edge_health"


def _node_series(kind: NodeKind, figure: str) -> str:
    """Rows for one node kind, labelled id/title/subtitle; members with no traffic read 0."""
    k = kind.key
    zero_for_members = f"({figure}) or on ({k}) (0 * {kind.members})"
    return (
        "sum by (id, title, subtitle) (\n"
        f"  label_replace(label_replace(label_replace(\n"
        f"    {zero_for_members},\n"
        f'  "id", "{kind.prefix}:$1", "{k}", "(.+)"),\n'
        f'  "title", "$1", "{k}", "(.+)"),\n'
        f'  "subtitle", "{kind.subtitle}", "", "")\n'
        ")"
    )


def _edge_series(kind: EdgeKind, figure: str) -> str:
    """Rows for one edge kind, labelled id/source/target; known edges with no traffic read 0."""
    s, t = kind.source, kind.target
    zero_for_members = f"({figure}) or on ({s.key}, {t.key}) (0 * {kind.members})"
    return (
        "sum by (id, source, target) (\n"
        "  label_join(label_replace(label_replace(\n"
        f"    {zero_for_members},\n"
        f'  "source", "{s.prefix}:$1", "{s.key}", "(.+)"),\n'
        f'  "target", "{t.prefix}:$1", "{t.key}", "(.+)"),\n'
        '  "id", "->", "source", "target")\n'
        ")"
    )


def _health(ratio: str, traffic: str) -> str:
    """Health level with ``color`` and ``state`` labels, from a ratio series (see health.py)."""
    parts = [
        _band(f"0 * ({ratio} < {health.AMBER_ERROR_RATIO})", health.HEALTHY),
        _band(
            f"0 * ({ratio} >= {health.AMBER_ERROR_RATIO} < {health.RED_ERROR_RATIO}) + 1",
            health.DEGRADED,
        ),
        _band(f"0 * ({ratio} >= {health.RED_ERROR_RATIO}) + 2", health.FAILING),
        # No traffic in the window: no ratio, so the row is idle rather than falsely green.
        _band(f"(0 * {traffic} - 1) unless on (id) {ratio}", health.IDLE),
    ]
    return "\nor\n".join(parts)


def _band(expr: str, band: health.Band) -> str:
    return (
        f'label_replace(label_replace({expr}, "color", "{band.color}", "", ""), '
        f'"state", "{band.state}", "", "")'
    )


def recording_rules() -> dict[str, Any]:
    """The rule file (as a dict ready for YAML) for Prometheus and ``promtool``."""
    node_rules = [
        {
            "record": NODE_REQUESTS,
            "expr": "\nor\n".join(_node_series(k, k.total) for k in NODE_KINDS),
        },
        {
            "record": NODE_ERRORS,
            "expr": "\nor\n".join(_node_series(k, k.errors) for k in NODE_KINDS),
        },
        {"record": NODE_ERROR_RATIO, "expr": f"{NODE_ERRORS} / ({NODE_REQUESTS} > 0)"},
        {"record": NODE_HEALTH, "expr": _health(NODE_ERROR_RATIO, NODE_REQUESTS)},
    ]
    edge_rules = [
        {
            "record": EDGE_REQUESTS,
            "expr": "\nor\n".join(_edge_series(k, k.total) for k in EDGE_KINDS),
        },
        {
            "record": EDGE_ERRORS,
            "expr": "\nor\n".join(_edge_series(k, k.errors) for k in EDGE_KINDS),
        },
        {"record": EDGE_ERROR_RATIO, "expr": f"{EDGE_ERRORS} / ({EDGE_REQUESTS} > 0)"},
        {"record": EDGE_HEALTH, "expr": _health(EDGE_ERROR_RATIO, EDGE_REQUESTS)},
    ]
    return {
        "groups": [
            {"name": "gauntlet-topology-nodes", "rules": node_rules},
            {"name": "gauntlet-topology-edges", "rules": edge_rules},
        ]
    }
