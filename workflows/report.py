"""Human-readable output: the live progress table, the scorecard, and a side-by-side comparison."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from workflows.runner import RunProgress
from workflows.scorecard import Scorecard

SHORT_CLASS = {
    "auth_expired": "auth",
    "invalid_creds": "creds",
    "rate_limit": "429",
    "network_error": "net",
    "server_error": "5xx",
    "timeout": "t/o",
    "client_error": "4xx",
    "schema_drift": "drift",
}


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


def _errors(errors: dict[str, Any]) -> str:
    parts = [f"{SHORT_CLASS.get(k, k)}:{v}" for k, v in sorted(errors.items()) if v]
    return " ".join(parts) or "-"


def _verdict(verdict: str) -> Text:
    return Text(verdict, style="bold green" if verdict == "PASSED" else "bold red")


def progress_table(p: RunProgress) -> Table:
    """Per-connector live figures while a run is going."""
    title = (
        f"{p.scenario} · {p.mode} · profile {p.profile} · {p.phase} "
        f"{min(p.elapsed, p.duration):.0f}/{p.duration:.0f}s"
    )
    table = Table(title=title, title_justify="left", expand=False)
    for col in ("connector", "calls", "ok", "errors", "retries", "refresh", "DLQ", "rate"):
        table.add_column(col, justify="left" if col in ("connector", "errors") else "right")
    for cid, st in sorted(p.connectors.items()):
        rate = st.get("current_rate")
        table.add_row(
            cid,
            str(st.get("calls", 0)),
            str(st.get("successes", 0)),
            _errors(st.get("failures") or {}),
            str(st.get("retries", 0)),
            str(st.get("token_refreshes", 0)),
            str(st.get("dlq_entries", 0)),
            "-" if rate is None else f"{rate:.0f}",
        )
    table.caption = (
        f"writes issued {p.writes_issued} · errors reaching workflows: {_errors(p.surfaced)}"
    )
    return table


def scorecard_tables(card: Scorecard) -> Group:
    """The scorecard: per-connector figures, then the invariants and the verdict."""
    conns = Table(
        title=f"{card.scenario} · {card.mode} · profile {card.profile} · seed {card.seed} · "
        f"{card.duration_seconds:.0f}s",
        title_justify="left",
    )
    for col in (
        "connector",
        "attempts",
        "ok",
        "goodput/s",
        "errors",
        "retries",
        "refresh",
        "DLQ",
        "p50 ms",
        "p99 ms",
    ):
        conns.add_column(col, justify="left" if col in ("connector", "errors") else "right")
    for c in card.connectors:
        conns.add_row(
            c.connector,
            str(c.attempts),
            str(c.successes),
            f"{c.goodput_rps:.1f}",
            _errors(c.errors),
            str(c.retries),
            str(c.token_refreshes),
            str(c.dlq_entries),
            _ms(c.latency_p50),
            _ms(c.latency_p99),
        )
    inv = Table(title="invariants (checked against the farm's ledger)", title_justify="left")
    inv.add_column("invariant")
    inv.add_column("result")
    inv.add_column("detail", overflow="fold")
    for i in card.invariants:
        inv.add_row(i.name, _result(i.passed), i.detail)
    verdict = Text.assemble("verdict: ", _verdict(card.verdict))
    return Group(conns, inv, verdict)


def _result(passed: bool) -> Text:
    return Text("pass", style="green") if passed else Text("FAIL", style="bold red")


def comparison_table(cards: list[Scorecard]) -> Table:
    """Profiles side by side: totals, each invariant, the verdict."""
    table = Table(
        title=f"{cards[0].scenario} · {cards[0].mode} · seed {cards[0].seed}: profiles compared",
        title_justify="left",
    )
    table.add_column("")
    for card in cards:
        table.add_column(card.profile, justify="right")
    totals = [c.totals() for c in cards]
    rows = [
        ("goodput (calls/s)", lambda t: f"{t['goodput_rps']:.1f}"),
        ("attempts", lambda t: str(t["attempts"])),
        (
            "success rate",
            lambda t: "-" if t["success_rate"] is None else f"{t['success_rate']:.1%}",
        ),
        ("errors", lambda t: _errors(t["errors"])),
        ("retries", lambda t: str(t["retries"])),
        ("token refreshes", lambda t: str(t["token_refreshes"])),
        ("DLQ entries", lambda t: str(t["dlq_entries"])),
        ("p50 / p99 ms", lambda t: f"{_ms(t['p50_seconds'])} / {_ms(t['p99_seconds'])}"),
    ]
    for label, fmt in rows:
        table.add_row(label, *(fmt(t) for t in totals))
    names = list(dict.fromkeys(i.name for c in cards for i in c.invariants))
    for name in names:
        cells: list[Text | str] = []
        for card in cards:
            try:
                cells.append(_result(card.invariant(name).passed))
            except KeyError:
                cells.append("-")
        table.add_row(name, *cells)
    table.add_row("verdict", *(_verdict(c.verdict) for c in cards))
    return table
