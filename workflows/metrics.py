"""Runner metrics (names in workflows/README.md), declared once, on the default registry.

The AAM backend's ``GET /metrics`` serves the default registry, so ``aam_*`` and these series
come out of one endpoint.
"""

from __future__ import annotations

import logging
import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from workflows.invariants import INVARIANT_NAMES

log = logging.getLogger(__name__)

WORKFLOW_RUNS = Counter(
    "gauntlet_workflow_runs_total",
    "Workflow iterations by outcome (ok or the error class that stopped the iteration).",
    ["workflow", "connector", "outcome"],
)
WORKFLOW_DURATION = Histogram(
    "gauntlet_workflow_duration_seconds",
    "Duration of one workflow iteration.",
    ["workflow"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
WORKFLOW_CONNECTOR_INFO = Gauge(
    "gauntlet_workflow_connector_info",
    "Topology: which workflow drives which connector (always 1).",
    ["workflow", "connector"],
)
SCENARIO_RUNS = Counter(
    "gauntlet_scenario_runs_total",
    "Finished scenario runs by verdict.",
    ["scenario", "mode", "profile", "verdict"],
)
SCENARIO_VERDICT = Gauge(
    "gauntlet_scenario_verdict",
    "Verdict of the last run: 1 passed, 0 failed, -1 error (the run could not be judged).",
    ["scenario", "mode", "profile"],
)
SCENARIO_INVARIANT = Gauge(
    "gauntlet_scenario_invariant_status",
    "Invariant status of the last run: 1 on the series of its status (pass, fail or "
    "not_exercised), 0 on the other two.",
    ["scenario", "profile", "invariant", "status"],
)
VERDICT_VALUES = {"PASSED": 1, "FAILED": 0, "ERROR": -1}
STATUSES = ("pass", "fail", "not_exercised")
SCENARIO_RUNNING = Gauge(
    "gauntlet_scenario_running",
    "1 while a scenario runs.",
    ["scenario", "profile"],
)


def precreate(scenario: str, mode: str, profile: str, workflows: dict[str, list[str]]) -> None:
    """Touch every label set this run will use so the series exist at zero from the start."""
    for workflow, connectors in workflows.items():
        WORKFLOW_DURATION.labels(workflow)
        for connector in connectors:
            WORKFLOW_CONNECTOR_INFO.labels(workflow, connector).set(1)
            for outcome in ("ok", "server_error", "network_error", "timeout", "rate_limit"):
                WORKFLOW_RUNS.labels(workflow, connector, outcome)
    for verdict in VERDICT_VALUES:
        SCENARIO_RUNS.labels(scenario, mode, profile, verdict)
    for invariant in INVARIANT_NAMES:
        for status in STATUSES:
            SCENARIO_INVARIANT.labels(scenario, profile, invariant, status)
    SCENARIO_VERDICT.labels(scenario, mode, profile)
    SCENARIO_RUNNING.labels(scenario, profile)


def record_verdict(
    scenario: str, mode: str, profile: str, verdict: str, statuses: dict[str, str]
) -> None:
    """Set the last-run gauges: the verdict, and each invariant's status series."""
    SCENARIO_RUNS.labels(scenario, mode, profile, verdict).inc()
    SCENARIO_VERDICT.labels(scenario, mode, profile).set(VERDICT_VALUES[verdict])
    for invariant, current in statuses.items():
        for status in STATUSES:
            SCENARIO_INVARIANT.labels(scenario, profile, invariant, status).set(
                1 if status == current else 0
            )


def push_if_configured(registry: CollectorRegistry = REGISTRY) -> bool:
    """Push every series to ``GAUNTLET_PUSHGATEWAY_URL`` (job ``gauntlet-runner``) when set.

    A short-lived Job is gone before Prometheus scrapes it; the Pushgateway keeps its last values.
    Failure to push is logged, never fatal: the verdict matters more than its metrics.
    """
    url = os.environ.get("GAUNTLET_PUSHGATEWAY_URL")
    if not url:
        return False
    from prometheus_client import push_to_gateway

    try:
        push_to_gateway(url, job="gauntlet-runner", registry=registry, timeout=10)
    except OSError as exc:
        log.warning("could not push metrics to %s: %s", url, exc)
        return False
    return True
