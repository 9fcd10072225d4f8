"""Connectors: one AAM connector (or several) in depth, templated by ``$connector``."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models import dashboard as model

from .common import DATASOURCE, TAG, series, value_texts
from .panels import GREEN, RED, graph, states

UID = "gauntlet-connectors"
RI = "$__rate_interval"
SEL = 'connector=~"$connector"'
#: The farm's per-(service, tenant) series, relabelled with the connector that talks to them.
BY_CONNECTOR = f"on (service, tenant) group_left (connector) group by (service, tenant, connector) (aam_connector_info{{{SEL}}})"  # noqa: E501

CIRCUIT = value_texts({0: ("closed", GREEN), 1: ("half-open", "orange"), 2: ("open", RED)})


def connector_variable() -> dashboard.QueryVariable:
    """``$connector``: every connector the AAM reports (multi-select, All by default)."""
    return (
        dashboard.QueryVariable("connector")
        .label("Connector")
        .datasource(DATASOURCE)
        .query("label_values(aam_connector_info, connector)")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .current(model.VariableOption(selected=True, text="All", value="$__all"))
    )


def build() -> dashboard.Dashboard:
    """The connector dashboard."""
    return (
        dashboard.Dashboard("AAM Gauntlet — connectors")
        .uid(UID)
        .description("Per-connector success, failures by error class, defences and latency.")
        .tags([TAG])
        .time("now-30m", "now")
        .refresh("10s")
        .timezone("browser")
        .with_variable(connector_variable())
        .with_panel(
            graph(
                "Calls: success vs failure by error class",
                "Logical calls per second by outcome: success or the error class "
                "(auth_expired, invalid_creds, rate_limit, network_error, server_error, "
                "timeout, client_error, schema_drift).",
                [
                    series(
                        f"sum by (connector, outcome) (rate(aam_calls_total{{{SEL}}}[{RI}]))",
                        "{{connector}} {{outcome}}",
                    )
                ],
                "reqps",
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "HTTP attempts by result",
                "Attempts on the wire by result (2xx, 4xx, 401, 429, 5xx, network, timeout).",
                [
                    series(
                        f"sum by (connector, result) (rate(aam_attempts_total{{{SEL}}}[{RI}]))",
                        "{{connector}} {{result}}",
                    )
                ],
                "reqps",
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "Token refreshes",
                "Token requests the connector made against the tokens the farm issued for its "
                "(service, tenant). Far more issued than expiries need = a refresh storm.",
                [
                    series(
                        f"sum by (connector) (rate(aam_token_refreshes_total{{{SEL}}}[{RI}]))",
                        "{{connector}} refreshes",
                        "A",
                    ),
                    series(
                        "sum by (connector) "
                        f"(rate(gauntlet_farm_tokens_issued_total[{RI}]) * {BY_CONNECTOR})",
                        "{{connector}} issued by farm",
                        "B",
                    ),
                ],
                "ops",
                width=8,
            )
        )
        .with_panel(
            graph(
                "Retries",
                "Re-attempts per second (each beyond a call's first attempt).",
                [
                    series(
                        f"sum by (connector) (rate(aam_retries_total{{{SEL}}}[{RI}]))",
                        "{{connector}}",
                    )
                ],
                "ops",
                width=8,
            )
        )
        .with_panel(
            graph(
                "Schema drift handled",
                "Drift the connector detected, by action (mapped, retyped, refused).",
                [
                    series(
                        f"sum by (connector, action) (rate(aam_drift_events_total{{{SEL}}}[{RI}]))",
                        "{{connector}} {{action}}",
                    )
                ],
                "ops",
                width=8,
            )
        )
        .with_panel(
            graph(
                "DLQ depth",
                "Dead-letter entries pending per connector.",
                [series(f"max by (connector) (aam_dlq_depth{{{SEL}}})", "{{connector}}")],
                "short",
                width=12,
            )
        )
        .with_panel(
            graph(
                "DLQ writes",
                "Writes sent to the dead-letter queue per second.",
                [
                    series(
                        f"sum by (connector) (rate(aam_dlq_writes_total{{{SEL}}}[{RI}]))",
                        "{{connector}}",
                    )
                ],
                "ops",
                width=12,
            )
        )
        .with_panel(
            graph(
                "Adaptive rate vs the service's limit",
                "The connector's client-side send rate against the farm's effective token-bucket "
                "refill rate for the same (service, tenant), after chaos.",
                [
                    series(
                        f"max by (connector) (aam_adaptive_rate_rps{{{SEL}}})",
                        "{{connector}} AAM send rate",
                        "A",
                    ),
                    series(
                        f"max by (connector) (gauntlet_farm_rate_limit_rps * {BY_CONNECTOR})",
                        "{{connector}} farm limit",
                        "B",
                    ),
                ],
                "reqps",
            )
        )
        .with_panel(
            graph(
                "Latency p50 / p99",
                "Logical call latency (retries and backoff included), from the histogram.",
                [
                    series(
                        "histogram_quantile(0.5, sum by (connector, le) "
                        f"(rate(aam_call_duration_seconds_bucket{{{SEL}}}[{RI}])))",
                        "{{connector}} p50",
                        "A",
                    ),
                    series(
                        "histogram_quantile(0.99, sum by (connector, le) "
                        f"(rate(aam_call_duration_seconds_bucket{{{SEL}}}[{RI}])))",
                        "{{connector}} p99",
                        "B",
                    ),
                ],
                "s",
            )
        )
        .with_panel(
            states(
                "Circuit state",
                "Circuit breaker per connector: closed, half-open, open.",
                [series(f"max by (connector) (aam_circuit_state{{{SEL}}})", "{{connector}}")],
                CIRCUIT,
                width=24,
            )
        )
    )
