"""Topology: a Node Graph of synthetic APIs -> AAM connectors -> workflows, coloured by health.

Stock Grafana, no plugins: two instant queries in table format. Every row of ``nodes`` has the
labels ``id``, ``title``, ``subtitle``, ``color`` and ``secondarystat``; every row of ``edges``
has ``id``, ``source``, ``target``, ``color`` and ``secondarystat`` (all built by the recording
rules in rules.py plus a ``label_replace``). The number of each row becomes a real field called
``mainstat`` through an "Add field from calculation" transformation, because renaming ``Value``
with Organize only sets a display name the Node Graph does not read (Grafana issue 54844).
Nodes show their error ratio, edges their request rate.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, nodegraph
from grafana_foundation_sdk.models import dashboard as model

from . import health, rules
from .common import DATASOURCE, TAG, instant_table
from .panels import rows_table

UID = "gauntlet-topology"

NODES_QUERY = (
    "label_replace(\n"
    f"  ({rules.NODE_ERROR_RATIO} or on (id) 0 * {rules.NODE_REQUESTS})\n"
    f"  + on (id) group_left (color, state) (0 * {rules.NODE_HEALTH}),\n"
    '"secondarystat", "$1", "state", "(.*)")'
)
EDGES_QUERY = (
    "label_replace(\n"
    f"  {rules.EDGE_REQUESTS}\n"
    f"  + on (id) group_left (color, state) (0 * {rules.EDGE_HEALTH}),\n"
    '"secondarystat", "$1", "state", "(.*)")'
)

#: Copies each row's only number into a field really named ``mainstat`` (labels are strings,
#: so the sum over a row's numeric fields is that one value).
MAINSTAT = model.DataTransformerConfig(
    id_val="calculateField",
    options={
        "mode": "reduceRow",
        "reduce": {"reducer": "sum"},
        "alias": "mainstat",
        "replaceFields": False,
    },
)


def node_graph() -> nodegraph.Panel:
    """The Node Graph panel."""
    return (
        nodegraph.Panel()
        .title("Topology: synthetic APIs → AAM connectors → workflows")
        .description(
            "Left: synthetic APIs (error % = non-2xx share of answers). Middle: AAM connectors "
            "(error % = failed logical calls). Right: workflows (error % = failed iterations). "
            "Edges show requests per second on that hop. Colours over the last "
            f"{health.WINDOW}: green < {health.AMBER_ERROR_RATIO:.0%} errors, amber from "
            f"{health.AMBER_ERROR_RATIO:.0%}, red from {health.RED_ERROR_RATIO:.0%}, grey idle."
        )
        .datasource(DATASOURCE)
        .targets([instant_table(NODES_QUERY, "nodes"), instant_table(EDGES_QUERY, "edges")])
        .with_transformation(MAINSTAT)
        .nodes(nodegraph.NodeOptions().main_stat_unit("percentunit"))
        .edges(nodegraph.EdgeOptions().main_stat_unit("reqps"))
        .span(24)
        .height(18)
    )


def build() -> dashboard.Dashboard:
    """The topology dashboard: the Node Graph and the health rows behind it."""
    return (
        dashboard.Dashboard("AAM Gauntlet — topology")
        .uid(UID)
        .description("Which connector talks to which API, which workflow uses which connector.")
        .tags([TAG])
        .time("now-30m", "now")
        .refresh("10s")
        .timezone("browser")
        .with_panel(node_graph())
        .with_panel(
            rows_table(
                "Node health",
                "Per node: error ratio over the window, with its health band (state, colour).",
                [
                    instant_table(
                        f"{rules.NODE_ERROR_RATIO} + on (id) group_left (state) "
                        f"(0 * {rules.NODE_HEALTH})",
                        "A",
                    )
                ],
                unit="percentunit",
                width=12,
            )
        )
        .with_panel(
            rows_table(
                "Edge health",
                "Per edge: error ratio over the window, with its health band (state, colour).",
                [
                    instant_table(
                        f"{rules.EDGE_ERROR_RATIO} + on (id) group_left (state) "
                        f"(0 * {rules.EDGE_HEALTH})",
                        "A",
                    )
                ],
                unit="percentunit",
                width=12,
            )
        )
    )
