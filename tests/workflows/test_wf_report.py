"""The human-readable tables: readable at 80 columns and in files, tri-state invariants shown."""

from __future__ import annotations

import io

from rich.console import Console

from workflows.console import FILE_WIDTH, console_width
from workflows.report import compact_errors, comparison, scorecard_tables
from workflows.scorecard import ConnectorFigures, InvariantResult, Scorecard, verdict_of

CONNECTORS = ["salesforce:acme-enterprise-eu", "stripe:acme", "netsuite:initech"]


def _card(profile: str, statuses: dict[str, str]) -> Scorecard:
    invariants = [
        InvariantResult(name=name, status=status, detail=f"{name} detail " * 6)  # type: ignore[arg-type]
        for name, status in statuses.items()
    ]
    return Scorecard(
        run_id=f"r-{profile}",
        scenario="storm",
        mode="storm",
        profile=profile,
        seed=42,
        duration_seconds=60,
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:01:00+00:00",
        connectors=[
            ConnectorFigures(
                connector=cid,
                service=cid.split(":")[0],
                tenant=cid.split(":")[1],
                calls=123456,
                attempts=234567,
                successes=123000,
                goodput_rps=2050.3,
                errors={"rate_limit": 20735, "auth_expired": 2429, "server_error": 371,
                        "network_error": 165, "timeout": 92},
                retries=99999,
                token_refreshes=12,
                dlq_entries=123,
                latency_p50=0.408,
                latency_p99=14.173,
                attempt_latency_p50=0.015,
                attempt_latency_p99=0.035,
                limiter_wait_seconds=1234.5,
            )
            for cid in CONNECTORS
        ],
        invariants=invariants,
        verdict=verdict_of(invariants),
    )  # fmt: skip


STATUSES = {
    "no_lost_writes": "pass",
    "drift_handled": "not_exercised",
    "retry_success_rate": "fail",
    "bounded_load_amplification": "pass",
}


def _render(renderable: object, width: int) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width, force_terminal=False, color_system=None).print(renderable)
    return buf.getvalue()


def test_the_scorecard_fits_80_columns_without_truncating_anything() -> None:
    text = _render(scorecard_tables(_card("full", STATUSES)), 80)
    assert "…" not in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    for cid in CONNECTORS:
        assert cid in text
    # Error classes: one line per connector, biggest first.
    line = next(x for x in text.splitlines() if x.startswith("stripe:acme ") and "429:" in x)
    assert "429:20735 auth:2429 5xx:371 net:165 t/o:92" in line
    # Call latency and wire latency side by side, both explained.
    assert "408/14173" in text and "15/35" in text
    assert "call ms" in text and "wire ms" in text and "pacing" in text
    assert "not exercised" in text and "FAIL" in text
    assert "verdict: FAILED — 2 passed, 1 failed, 1 not exercised (drift_handled)" in text


def test_the_comparison_shows_each_status_and_the_unexercised_count() -> None:
    naive = _card("naive", STATUSES)
    full = _card("full", {**STATUSES, "retry_success_rate": "pass"})
    text = _render(comparison([naive, full]), 80)
    assert "…" not in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.strip()}
    assert rows["drift_handled"] == ["not", "exercised", "not", "exercised"]
    assert rows["retry_success_rate"] == ["FAIL", "pass"]
    assert rows["not"] == ["exercised", "1", "1"]
    assert rows["verdict"] == ["FAILED", "PASSED"]
    assert "full: PASSED — 3 passed, 0 failed, 1 not exercised (drift_handled)" in text
    assert "wire p50/p99 ms" in text and "call p50/p99 ms" in text


def test_a_file_gets_a_fixed_width_unless_columns_says_otherwise(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("COLUMNS", raising=False)
    assert console_width(io.StringIO()) == FILE_WIDTH
    monkeypatch.setenv("COLUMNS", "80")
    assert console_width(io.StringIO()) is None  # rich reads COLUMNS itself


def test_compact_errors_is_one_line_biggest_first() -> None:
    assert compact_errors({}) == "-"
    assert compact_errors({"timeout": 2, "rate_limit": 9, "server_error": 0}) == "429:9 t/o:2"
