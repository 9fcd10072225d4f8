"""The dashboards are generated, committed, and query only the documented metrics."""

from __future__ import annotations

import re

from gauntlet_dashboards import generate, health, rules
from gauntlet_dashboards.common import DATASOURCE_UID
from observability_support import contract_catalogue, load_dashboards, panel_queries, panels

_KEYWORDS = {"or", "and", "unless", "bool", "offset"}
_CLAUSE = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (functions, labels and keywords left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = _CLAUSE.sub("", text)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        following = text[match.end() :].lstrip()
        if following.startswith("(") or match.group() in _KEYWORDS:
            continue
        names.add(match.group())
    return names


def known_names() -> set[str]:
    known = set()
    for name, contract in contract_catalogue().items():
        known.add(name)
        if contract.type == "histogram":
            known.update({f"{name}_bucket", f"{name}_sum", f"{name}_count"})
    for group in rules.recording_rules()["groups"]:
        known.update(rule["record"] for rule in group["rules"])
    return known


def test_committed_files_are_what_the_generator_writes() -> None:
    assert generate.stale() == [], "run `make dashboards` and commit the result"


def test_three_dashboards_with_fixed_uids_and_the_provisioned_datasource() -> None:
    dashboards = load_dashboards()
    assert {d["uid"] for d in dashboards.values()} == {
        "gauntlet-overview",
        "gauntlet-connectors",
        "gauntlet-topology",
    }
    for name, dash in dashboards.items():
        for panel in panels(dash):
            assert panel["datasource"]["uid"] == DATASOURCE_UID, (name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == DATASOURCE_UID, (name, panel["title"])
                assert target["refId"], (name, panel["title"])


def test_panels_have_unique_ids_and_do_not_overlap() -> None:
    for name, dash in load_dashboards().items():
        ids = [p["id"] for p in panels(dash)]
        assert len(ids) == len(set(ids)), name
        cells = set()
        for panel in panels(dash):
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, (name, panel["title"])
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    assert (x, y) not in cells, (name, panel["title"])
                    cells.add((x, y))


def test_every_query_reads_only_catalogued_metrics_or_topology_rules() -> None:
    known = known_names()
    queries = panel_queries()
    assert len(queries) >= 25
    for query in queries:
        names = metric_names(query.expr)
        assert names, f"{query.panel}: no metric in {query.expr!r}"
        assert names <= known, f"{query.panel}: unknown {names - known}"


def test_the_metric_name_extractor_sees_through_promql_syntax() -> None:
    expr = (
        'sum by (connector, le) (rate(aam_call_duration_seconds_bucket{connector=~"$c"}[5m])) '
        "* on (service, tenant) group_left (connector) max(gauntlet_farm_rate_limit_rps) "
        '> bool 0 or label_replace(x:y:z, "a", "$1", "b", "(.*)")'
    )
    assert metric_names(expr) == {
        "aam_call_duration_seconds_bucket",
        "gauntlet_farm_rate_limit_rps",
        "x:y:z",
    }


def test_dashboards_cover_the_issue_panels() -> None:
    titles = {p["title"] for d in load_dashboards().values() for p in panels(d)}
    for needed in (
        "Scenario verdicts",
        "Chaos level",
        "Farm requests by status code",
        "AAM goodput vs attempts",
        "Calls: success vs failure by error class",
        "Token refreshes",
        "Retries",
        "DLQ depth",
        "DLQ writes",
        "Adaptive rate vs the service's limit",
        "Latency p50 / p99",
        "Circuit state",
    ):
        assert needed in titles


def test_connector_dashboard_is_templated_by_connector() -> None:
    dash = load_dashboards()["gauntlet-connectors.json"]
    (variable,) = dash["templating"]["list"]
    assert variable["name"] == "connector"
    assert variable["query"] == "label_values(aam_connector_info, connector)"
    assert variable["multi"] and variable["includeAll"]
    for panel in panels(dash):
        for target in panel["targets"]:
            assert '"$connector"' in target["expr"], panel["title"]


def test_node_graph_follows_the_stock_grafana_recipe() -> None:
    dash = load_dashboards()["gauntlet-topology.json"]
    (graph,) = [p for p in panels(dash) if p["type"] == "nodeGraph"]
    targets = {t["refId"]: t for t in graph["targets"]}
    assert set(targets) == {"nodes", "edges"}
    for target in targets.values():
        assert target["instant"] is True and target["range"] is False
        assert target["format"] == "table"
    # The row's number must become a real field named mainstat (Grafana issue 54844).
    (calc,) = graph["transformations"]
    assert calc["id"] == "calculateField"
    assert calc["options"]["mode"] == "reduceRow"
    assert calc["options"]["alias"] == "mainstat"
    assert calc["options"]["replaceFields"] is False
    assert graph["options"]["nodes"]["mainStatUnit"] == "percentunit"
    assert graph["options"]["edges"]["mainStatUnit"] == "reqps"
    # Label columns the Node Graph reads by name.
    assert '"secondarystat"' in targets["nodes"]["expr"]
    assert "group_left (color, state)" in targets["nodes"]["expr"]
    assert rules.NODE_HEALTH in targets["nodes"]["expr"]
    assert rules.EDGE_HEALTH in targets["edges"]["expr"]


def test_health_bands_have_inclusive_lower_bounds() -> None:
    assert health.band_for(None) is health.IDLE
    assert health.band_for(0.0) is health.HEALTHY
    assert health.band_for(health.AMBER_ERROR_RATIO - 1e-9) is health.HEALTHY
    assert health.band_for(health.AMBER_ERROR_RATIO) is health.DEGRADED
    assert health.band_for(health.RED_ERROR_RATIO - 1e-9) is health.DEGRADED
    assert health.band_for(health.RED_ERROR_RATIO) is health.FAILING
    assert health.band_for(1.0) is health.FAILING
    assert len({b.color for b in health.BANDS}) == len(health.BANDS)
