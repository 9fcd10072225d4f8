"""The AAM's Prometheus metrics, declared once (names and labels are the contract in README.md).

Connectors resolve their label children once (:class:`ConnectorMetrics`), so the hot path does
no label lookups, and every series a dashboard queries exists at zero from the start.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from aam.errors import ERROR_CLASSES

CALLS = Counter(
    "aam_calls_total", "Logical AAM calls by outcome", ["connector", "service", "outcome"]
)
ATTEMPTS = Counter(
    "aam_attempts_total", "HTTP attempts by result", ["connector", "service", "result"]
)
RETRIES = Counter("aam_retries_total", "Re-attempts", ["connector", "service"])
TOKEN_REFRESHES = Counter(
    "aam_token_refreshes_total", "OAuth2 token requests made", ["connector", "service"]
)
DLQ_DEPTH = Gauge("aam_dlq_depth", "DLQ entries waiting", ["connector", "service"])
DLQ_WRITES = Counter("aam_dlq_writes_total", "Writes sent to the DLQ", ["connector", "service"])
ADAPTIVE_RATE = Gauge(
    "aam_adaptive_rate_rps",
    "Current client-side send rate (0 = unlimited)",
    ["connector", "service"],
)
CIRCUIT_STATE = Gauge(
    "aam_circuit_state", "Circuit breaker: 0 closed, 1 half-open, 2 open", ["connector", "service"]
)
CALL_DURATION = Histogram(
    "aam_call_duration_seconds",
    "Logical call latency, retries included",
    ["connector", "service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DRIFT_EVENTS = Counter(
    "aam_drift_events_total", "Schema drift detected", ["connector", "service", "action"]
)
CONNECTOR_INFO = Gauge(
    "aam_connector_info", "Topology: connector to service", ["connector", "service", "tenant"]
)

OUTCOMES = ("success", *ERROR_CLASSES)
ATTEMPT_RESULTS = ("2xx", "4xx", "401", "429", "5xx", "network", "timeout")
DRIFT_ACTIONS = ("mapped", "retyped", "refused")


class ConnectorMetrics:
    """The label children of one connector, created (at zero) when the connector is."""

    def __init__(self, connector: str, service: str, tenant: str) -> None:
        labels = (connector, service)
        self.calls = {o: CALLS.labels(*labels, o) for o in OUTCOMES}
        self.attempts = {r: ATTEMPTS.labels(*labels, r) for r in ATTEMPT_RESULTS}
        self.retries = RETRIES.labels(*labels)
        self.token_refreshes = TOKEN_REFRESHES.labels(*labels)
        self.dlq_depth = DLQ_DEPTH.labels(*labels)
        self.dlq_writes = DLQ_WRITES.labels(*labels)
        self.rate = ADAPTIVE_RATE.labels(*labels)
        self.circuit = CIRCUIT_STATE.labels(*labels)
        self.duration = CALL_DURATION.labels(*labels)
        self.drift = {a: DRIFT_EVENTS.labels(*labels, a) for a in DRIFT_ACTIONS}
        CONNECTOR_INFO.labels(connector, service, tenant).set(1)


def attempt_result(status: int | None, error_class: str | None) -> str:
    """The ``result`` label of one attempt."""
    if status is None:
        return "timeout" if error_class == "timeout" else "network"
    if status < 400:
        return "2xx"
    if status in (401, 429):
        return str(status)
    if status >= 500:
        return "5xx"
    return "4xx"
