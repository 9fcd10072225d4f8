"""Against a real Prometheus: every dashboard query, and the topology, after a storm run.

The stack: the farm (all preseeded services) and the AAM backend (serving ``aam_*`` and the
runner's ``gauntlet_*`` on ``/metrics``), a Pushgateway, and the Debian Prometheus scraping all
three every second with the repository's recording rules. Two runs feed it: ``gauntlet run`` as the
Kubernetes Job runs it (a separate process, never scraped, pushing its final figures to the
Pushgateway), then a storm scenario through the backend's API while Prometheus scrapes it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml
from gauntlet_dashboards import health, rules, topology
from observability_live import (
    GauntletStack,
    Prometheus,
    Pushgateway,
    run_cli_scenario,
    wait_until,
)
from observability_support import ROOT, PanelQuery, panel_queries, require_binary, substitute

pytestmark = pytest.mark.slow

SCENARIO = ROOT / "workflows" / "scenarios" / "storm.yaml"
#: What Grafana would pick for $__rate_interval at a 1 s scrape interval is 4 s; a little more
#: keeps every window over a few samples on a loaded machine.
RATE_INTERVAL = "10s"
BACKEND_RUN_SECONDS = 6


@dataclass
class ObservedRun:
    """A finished run as Prometheus saw it."""

    prometheus: Prometheus
    started: float
    queried: float
    scenario: dict[str, Any]
    connectors: set[str]
    workflows: set[str]
    services: set[str]
    farm_services: set[str]

    def variables(self) -> dict[str, str]:
        """Template variables as Grafana sends them with "All" selected (a regex alternation)."""
        return {"connector": "(" + "|".join(sorted(self.connectors)) + ")"}


def _backend_storm_run(backend_url: str, token: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=backend_url, timeout=10, headers=headers) as client:
        started = client.post(
            "/scenarios/run",
            json={"scenario": "storm", "duration_seconds": BACKEND_RUN_SECONDS},
        )
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]

        def finished() -> dict[str, Any] | None:
            run = client.get(f"/runs/{run_id}").json()
            return run if run.get("status") in ("done", "error") else None

        run = wait_until(finished, timeout=BACKEND_RUN_SECONDS + 60, what="the backend run")
    assert run["status"] == "done", run
    return dict(run)


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObservedRun]:
    prometheus_bin = require_binary("prometheus")
    pushgateway_bin = require_binary("prometheus-pushgateway")
    workdir = tmp_path_factory.mktemp("observability")
    stack = GauntletStack(workdir)
    pushgateway: Pushgateway | None = None
    prometheus: Prometheus | None = None
    try:
        stack.start()
        pushgateway = Pushgateway(pushgateway_bin, workdir)
        pushgateway.wait_ready()
        hostport = {
            "farm": stack.farm_url.removeprefix("http://"),
            "aam-backend": stack.backend_url.removeprefix("http://"),
            "pushgateway": pushgateway.url.removeprefix("http://"),
        }
        prometheus = Prometheus(prometheus_bin, workdir, hostport)
        prometheus.wait_for_targets(list(hostport))
        started = time.time() - 2

        token_file = workdir / "admin-token"
        token_file.write_text(stack.admin_token)
        token_file.chmod(0o600)
        cli = run_cli_scenario(SCENARIO, stack.farm_url, token_file, workdir, pushgateway.url)
        assert cli.returncode in (0, 1), cli.stdout[-3000:] + cli.stderr[-3000:]

        _backend_storm_run(stack.backend_url, stack.backend_token)
        ended = time.time()

        # Wait for a scrape after the end, then for the topology rules evaluated after it.
        def settled() -> bool:
            assert prometheus is not None
            pushed = prometheus.instant('gauntlet_scenario_verdict{job="gauntlet-runner"}')
            scraped = prometheus.instant(
                f'gauntlet_scenario_verdict{{job="aam-backend"}} and on () '
                f"(timestamp(up{{job='aam-backend'}}) > {ended + 1:.3f})"
            )
            evaluated = prometheus.instant(
                f"min(timestamp({rules.NODE_HEALTH})) > {ended + 2:.3f} "
                f"and on () min(timestamp({rules.EDGE_HEALTH})) > {ended + 2:.3f}"
            )
            return bool(pushed and scraped and evaluated)

        wait_until(settled, timeout=30, what="the final scrape and rule evaluation")
        scenario = yaml.safe_load(SCENARIO.read_text())
        services = set(scenario["services"])
        from farm.loader import DEFAULT_CONFIG_DIR, load_specs

        yield ObservedRun(
            prometheus=prometheus,
            started=started,
            queried=time.time(),
            scenario=scenario,
            connectors={f"{s}:{t}" for s in services for t in scenario["tenants"]},
            workflows={w["name"] for w in scenario["workflows"]},
            services=services,
            farm_services={spec.id for spec in load_specs([DEFAULT_CONFIG_DIR])},
        )
    finally:
        if prometheus is not None:
            prometheus.close()
        if pushgateway is not None:
            pushgateway.close()
        stack.close()


QUERIES = panel_queries()


@pytest.mark.parametrize(
    "query", QUERIES, ids=[f"{q.dashboard}:{q.panel}:{q.ref_id}" for q in QUERIES]
)
def test_every_panel_query_returns_series(observed: ObservedRun, query: PanelQuery) -> None:
    expr = substitute(query.expr, observed.variables(), RATE_INTERVAL)
    assert "$" not in expr.replace("$1", ""), f"unsubstituted variable in {expr}"
    prom = observed.prometheus
    if query.instant:
        result = prom.instant(expr, at=observed.queried)
    else:
        result = prom.range(expr, observed.started, observed.queried)
    assert result, f"{query.dashboard} / {query.panel} returned no series:\n{expr}"


def test_connector_variable_lists_every_connector_of_the_run(observed: ObservedRun) -> None:
    values = observed.prometheus.api("label/connector/values", **{"match[]": "aam_connector_info"})
    assert observed.connectors <= set(values)


def _rows(observed: ObservedRun, expr: str) -> list[dict[str, Any]]:
    rows = observed.prometheus.instant(expr, at=observed.queried)
    return [{**row["metric"], "value": float(row["value"][1])} for row in rows]


def test_topology_has_a_node_for_every_service_connector_and_workflow(
    observed: ObservedRun,
) -> None:
    nodes = _rows(observed, topology.NODES_QUERY)
    ids = [n["id"] for n in nodes]
    assert len(ids) == len(set(ids)), "duplicate node ids"
    expected = (
        {f"svc:{s}" for s in observed.farm_services}
        | {f"conn:{c}" for c in observed.connectors}
        | {f"wf:{w}" for w in observed.workflows}
    )
    assert expected <= set(ids)
    for node in nodes:
        assert {"title", "subtitle", "color", "secondarystat"} <= set(node), node
        kind = node["id"].split(":", 1)[0]
        assert (
            node["subtitle"]
            == {
                "svc": "synthetic API",
                "conn": "AAM connector",
                "wf": "workflow",
            }[kind]
        )
        assert node["id"] == f"{kind}:{node['title']}"
        assert 0.0 <= node["value"] <= 1.0  # mainstat: the error ratio
    # The services and connectors of the run carried traffic: none of them is idle.
    busy = {f"svc:{s}" for s in observed.services} | {f"conn:{c}" for c in observed.connectors}
    for node in nodes:
        if node["id"] in busy:
            assert node["secondarystat"] != health.IDLE.state, node


def test_every_edge_joins_two_nodes_and_every_hop_is_drawn(observed: ObservedRun) -> None:
    node_ids = {n["id"] for n in _rows(observed, topology.NODES_QUERY)}
    edges = _rows(observed, topology.EDGES_QUERY)
    assert edges
    for edge in edges:
        assert edge["source"] in node_ids and edge["target"] in node_ids, edge
        assert edge["id"] == f"{edge['source']}->{edge['target']}"
        assert edge["value"] >= 0  # mainstat: requests per second on that hop
        assert {"color", "secondarystat"} <= set(edge)
    pairs = {(e["source"], e["target"]) for e in edges}
    for connector in observed.connectors:
        service = connector.split(":", 1)[0]
        assert (f"svc:{service}", f"conn:{connector}") in pairs
    for workflow in observed.workflows:
        assert any(t == f"wf:{workflow}" for _, t in pairs), workflow
    # Left to right: APIs feed connectors, connectors feed workflows, nothing else.
    kinds = {(s.split(":", 1)[0], t.split(":", 1)[0]) for s, t in pairs}
    assert kinds == {("svc", "conn"), ("conn", "wf")}


def _ratios(observed: ObservedRun, record: str) -> dict[str, float]:
    return {row["id"]: row["value"] for row in _rows(observed, record)}


def test_colours_follow_the_recorded_error_ratios(observed: ObservedRun) -> None:
    for query, ratio_record in (
        (topology.NODES_QUERY, rules.NODE_ERROR_RATIO),
        (topology.EDGES_QUERY, rules.EDGE_ERROR_RATIO),
    ):
        ratios = _ratios(observed, ratio_record)
        for row in _rows(observed, query):
            band = health.band_for(ratios.get(row["id"]))
            assert (row["color"], row["secondarystat"]) == (band.color, band.state), (
                row,
                ratios.get(row["id"]),
            )


def _raw_ratio(observed: ObservedRun, errors: str, total: str) -> dict[str, float]:
    """Failed / all from the counters' own values (cumulative: the run is inside the window)."""
    err = {r["key"]: r["value"] for r in _keyed(observed, errors)}
    return {
        key: err.get(key, 0.0) / value
        for key, value in ((r["key"], r["value"]) for r in _keyed(observed, total))
        if value > 0
    }


def _keyed(observed: ObservedRun, expr: str) -> list[dict[str, Any]]:
    rows = observed.prometheus.instant(expr, at=observed.queried)
    return [{"key": next(iter(r["metric"].values())), "value": float(r["value"][1])} for r in rows]


def test_node_ratios_agree_with_the_raw_counters(observed: ObservedRun) -> None:
    # The pushed copies (job gauntlet-runner) are static, so rate() ignores them; so do we.
    live = 'job!="gauntlet-runner"'
    raw = {
        "svc": _raw_ratio(
            observed,
            'sum by (service) (gauntlet_farm_requests_total{code!~"2.."})',
            "sum by (service) (gauntlet_farm_requests_total)",
        ),
        "conn": _raw_ratio(
            observed,
            f'sum by (connector) (aam_calls_total{{outcome!="success",{live}}})',
            f"sum by (connector) (aam_calls_total{{{live}}})",
        ),
        "wf": _raw_ratio(
            observed,
            f'sum by (workflow) (gauntlet_workflow_runs_total{{outcome!="ok",{live}}})',
            f"sum by (workflow) (gauntlet_workflow_runs_total{{{live}}})",
        ),
    }
    recorded = _ratios(observed, rules.NODE_ERROR_RATIO)
    assert recorded
    for node_id, ratio in recorded.items():
        kind, key = node_id.split(":", 1)
        assert key in raw[kind], node_id
        # rate() extrapolates series born mid-run a little differently: a few points of slack.
        assert abs(ratio - raw[kind][key]) <= 0.05, (node_id, ratio, raw[kind][key])
        near_threshold = any(
            abs(raw[kind][key] - t) < 0.02
            for t in (health.AMBER_ERROR_RATIO, health.RED_ERROR_RATIO)
        )
        if not near_threshold:
            assert health.band_for(ratio) == health.band_for(raw[kind][key]), node_id


def test_the_runner_jobs_final_figures_arrive_through_the_pushgateway(
    observed: ObservedRun,
) -> None:
    prom = observed.prometheus
    verdicts = prom.instant('gauntlet_scenario_verdict{job="gauntlet-runner"}')
    assert {row["metric"]["scenario"] for row in verdicts} == {observed.scenario["name"]}
    runs = prom.instant('sum(gauntlet_workflow_runs_total{job="gauntlet-runner"})')
    assert runs and float(runs[0]["value"][1]) > 0
    calls = prom.instant('sum(aam_calls_total{job="gauntlet-runner"})')
    assert calls and float(calls[0]["value"][1]) > 0
    # honor_labels: nothing the runner pushed is relabelled as the Pushgateway's own job.
    assert not prom.instant('gauntlet_scenario_verdict{job="pushgateway"}')


def test_verdict_panel_shows_one_row_per_scenario_although_two_copies_arrive(
    observed: ObservedRun,
) -> None:
    # The backend's verdict is scraped, the Job's verdict is pushed: two series, one row.
    copies = observed.prometheus.instant("gauntlet_scenario_verdict", at=observed.queried)
    assert {r["metric"]["job"] for r in copies} == {"aam-backend", "gauntlet-runner"}
    (query,) = [q for q in QUERIES if q.panel == "Scenario verdicts"]
    rows = observed.prometheus.instant(query.expr, at=observed.queried)
    assert [
        (r["metric"]["scenario"], r["metric"]["mode"], r["metric"]["profile"]) for r in rows
    ] == [("storm", "storm", "full")]
    assert rows[0]["value"][1] in ("0", "1")


def test_prometheus_listens_on_loopback_and_stores_in_temp(
    observed: ObservedRun, tmp_path_factory: pytest.TempPathFactory
) -> None:
    flags = observed.prometheus.api("status/flags")
    assert flags["web.listen-address"].startswith("127.0.0.1:")
    assert flags["storage.tsdb.path"].startswith(str(tmp_path_factory.getbasetemp()))
