"""Gauntlet overview: verdicts, invariants, chaos level, farm traffic, AAM goodput."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from .common import TAG, series, value_texts
from .panels import GREEN, RED, big_numbers, graph

UID = "gauntlet-overview"
RI = "$__rate_interval"

VERDICT = value_texts({-1: ("ERROR", "orange"), 0: ("FAILED", RED), 1: ("PASSED", GREEN)})
#: 0 fail, 1 pass, 2 not exercised (see the query below): untested is never shown green.
INVARIANT_STATUS = value_texts({0: ("fail", RED), 1: ("pass", GREEN), 2: ("not exercised", "text")})
RUNNING = value_texts({0: ("idle", "text"), 1: ("running", "blue")})
CHAOS = value_texts(
    {
        0: ("off", "text"),
        1: ("calm", GREEN),
        2: ("mild", "yellow"),
        3: ("storm", "orange"),
        4: ("hell", RED),
    }
)


def build() -> dashboard.Dashboard:
    """The overview dashboard: what a person looks at first during and after a scenario."""
    return (
        dashboard.Dashboard("AAM Gauntlet — overview")
        .uid(UID)
        .description("Scenario verdicts, chaos, farm traffic and AAM goodput.")
        .tags([TAG])
        .time("now-30m", "now")
        .refresh("10s")
        .timezone("browser")
        .with_panel(
            big_numbers(
                "Scenario verdicts",
                "Verdict of each scenario's last finished run (scenario · mode · AAM profile).",
                [
                    series(
                        "max by (scenario, mode, profile) (gauntlet_scenario_verdict)",
                        "{{scenario}} · {{mode}} · {{profile}}",
                    )
                ],
                mappings=VERDICT,
                steps=((None, RED), (1, GREEN)),
            )
        )
        .with_panel(
            big_numbers(
                "Invariants (last run)",
                "Each invariant of each scenario's last run, judged on the farm's evidence: "
                "pass, fail, or not exercised (grey: the run never tested it).",
                [
                    series(
                        "max by (scenario, profile, invariant) "
                        '(gauntlet_scenario_invariant_status{status="pass"}) + 2 * '
                        "max by (scenario, profile, invariant) "
                        '(gauntlet_scenario_invariant_status{status="not_exercised"})',
                        "{{invariant}} ({{profile}})",
                    )
                ],
                mappings=INVARIANT_STATUS,
                steps=((None, RED), (1, GREEN), (2, "text")),
            )
        )
        .with_panel(
            big_numbers(
                "Chaos level",
                "Chaos level each synthetic API runs at (off, calm, mild, storm, hell).",
                [series("max by (service) (gauntlet_farm_chaos_level)", "{{service}}")],
                mappings=CHAOS,
                steps=((None, "text"),),
                width=16,
                height=5,
            )
        )
        .with_panel(
            big_numbers(
                "Scenarios running",
                "1 while a scenario (per AAM profile) is running.",
                [
                    series(
                        "max by (scenario, profile) (gauntlet_scenario_running)",
                        "{{scenario}} ({{profile}})",
                    )
                ],
                mappings=RUNNING,
                steps=((None, "text"),),
                width=8,
                height=5,
            )
        )
        .with_panel(
            graph(
                "Farm requests by status code",
                "Data requests the synthetic APIs answered, by HTTP status "
                "(network = connection dropped mid-response).",
                [
                    series(
                        f"sum by (code) (rate(gauntlet_farm_requests_total[{RI}]))",
                        "{{code}}",
                    )
                ],
                "reqps",
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "AAM goodput vs attempts",
                "Successful logical calls per second (goodput) against all logical calls and "
                "all HTTP attempts (retries included): the gap is what chaos costs.",
                [
                    series(
                        f'sum(rate(aam_calls_total{{outcome="success"}}[{RI}]))',
                        "goodput (successful calls)",
                        "A",
                    ),
                    series(f"sum(rate(aam_calls_total[{RI}]))", "logical calls", "B"),
                    series(f"sum(rate(aam_attempts_total[{RI}]))", "HTTP attempts", "C"),
                ],
                "reqps",
            )
        )
        .with_panel(
            graph(
                "Faults injected by kind",
                "Faults the farm injected (server_error, rate_limit_spike, refused, network, "
                "reset_mid_body, timeout, slow_body, commit_then_fail, commit_then_5xx, outage, "
                "token_rate_limited, token_error).",
                [
                    series(
                        f"sum by (kind) (rate(gauntlet_farm_faults_injected_total[{RI}]))",
                        "{{kind}}",
                    )
                ],
                "ops",
                width=8,
            )
        )
        .with_panel(
            graph(
                "AAM call outcomes",
                "Logical calls by outcome: success or the error class the AAM surfaced.",
                [
                    series(
                        f"sum by (outcome) (rate(aam_calls_total[{RI}]))",
                        "{{outcome}}",
                    )
                ],
                "reqps",
                width=8,
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "Workflow iterations by outcome",
                "Iterations of each workflow per second, by outcome.",
                [
                    series(
                        f"sum by (workflow, outcome) (rate(gauntlet_workflow_runs_total[{RI}]))",
                        "{{workflow}} {{outcome}}",
                    )
                ],
                "ops",
                width=8,
            )
        )
        .with_panel(
            big_numbers(
                "Finished scenario runs",
                "Runs finished by the reporting runner, by scenario, profile and verdict.",
                [
                    series(
                        "max by (scenario, profile, verdict) (gauntlet_scenario_runs_total)",
                        "{{scenario}} ({{profile}}) {{verdict}}",
                    )
                ],
                width=24,
                height=5,
            )
        )
    )
