"""Human-readable output: the live progress table, the scorecard, and a side-by-side comparison.

Every table fits 80 columns without truncating a connector name: numeric columns have short
headers, error classes are one compact line (``429:20735 auth:2429``) or one row per class, and
the long latency headings are explained in a caption. When stdout is not a terminal (CI logs,
``make demo > file``) the CLI's console renders at a fixed width (:mod:`workflows.console`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from workflows.runner import RunProgress
from workflows.scorecard import InvariantStatus, Scorecard, closing_line

SHORT_CLASS = {
    "auth_expired": "auth",
    "invalid_creds": "creds",
    "rate_limit": "429",
    "network_error": "net",
    "server_error": "5xx",
    "timeout": "t/o",
    "client_error": "4xx",
    "schema_drift": "drift",
    "unclassified": "other",
}

STATUS_TEXT: dict[str, tuple[str, str]] = {
    "pass": ("pass", "green"),
    "fail": ("FAIL", "bold red"),
    "not_exercised": ("not exercised", "yellow"),
}

LATENCY_CAPTION = (
    "call ms: a successful logical call, incl. client-side pacing, backoff and retries; "
    "wire ms: one successful HTTP attempt; wait s: total time attempts queued in the "
    "client-side rate limiter; tries: HTTP attempts; refr: token refreshes"
)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


def _p50_p99(p50: float | None, p99: float | None) -> str:
    if p50 is None and p99 is None:
        return "-"
    return f"{_ms(p50)}/{_ms(p99)}"


def compact_errors(errors: dict[str, Any]) -> str:
    """Error classes on one line, biggest first: ``429:20735 auth:2429``."""
    parts = [
        f"{SHORT_CLASS.get(k, k)}:{v}"
        for k, v in sorted(errors.items(), key=lambda kv: (-int(kv[1] or 0), kv[0]))
        if v
    ]
    return " ".join(parts) or "-"


def _verdict(verdict: str) -> Text:
    return Text(verdict, style="bold green" if verdict == "PASSED" else "bold red")


def _table(title: str, caption: str | None = None, *, compact: bool = False) -> Table:
    """A borderless table; ``compact`` drops the column rules (two spaces between columns)."""
    return Table(
        min_width=min(len(title), 80),
        title=title,
        title_justify="left",
        caption=caption,
        caption_justify="left",
        box=None if compact else box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1),
        pad_edge=False,
        expand=False,
        header_style="bold underline" if compact else "bold",
    )


@dataclass
class KeyedTable:
    """Rows keyed by a name that must never be cut (a connector id), then numeric columns.

    Rendered as one row per key when it fits the width; otherwise each key goes on its own line
    with its figures on the next, so neither the key nor a number is ever truncated.
    """

    title: str
    key: str
    columns: list[str]
    rows: list[tuple[str, list[str]]] = field(default_factory=list)
    caption: str | None = None

    def wide(self) -> Table:
        table = _table(self.title, self.caption, compact=True)
        table.add_column(self.key, no_wrap=True)
        for col in self.columns:
            table.add_column(col, justify="right", no_wrap=True)
        for key, cells in self.rows:
            table.add_row(key, *cells)
        return table

    def stacked(self) -> list[Text]:
        headers = [col.split("\n") for col in self.columns]
        depth = max((len(h) for h in headers), default=1)
        widths = [
            max([len(x) for x in h] + [len(cells[i]) for _, cells in self.rows])
            for i, h in enumerate(headers)
        ]
        lines = [Text(self.title, style="italic")]
        for level in range(depth):
            parts = []
            for h, w in zip(headers, widths, strict=True):
                label = h[level - (depth - len(h))] if level >= depth - len(h) else ""
                parts.append(label.rjust(w))
            lines.append(Text("  " + "  ".join(parts), style="bold"))
        for key, cells in self.rows:
            lines.append(Text(key))
            lines.append(
                Text("  " + "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)))
            )
        if self.caption:
            lines.append(Text(self.caption))
        return lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table = self.wide()
        natural = Measurement.get(console, options.update_width(10_000), table).maximum
        if natural <= options.max_width:
            yield table
        else:
            yield from self.stacked()


def progress_table(p: RunProgress) -> Group:
    """Per-connector live figures while a run is going."""
    title = (
        f"{p.scenario} · {p.mode} · profile {p.profile} · {p.phase} "
        f"{min(p.elapsed, p.duration):.0f}/{p.duration:.0f}s"
    )
    table = KeyedTable(title, "connector", ["calls", "ok", "retry", "refr", "DLQ", "rate"])
    failed = _table("failed calls by class", compact=True)
    failed.add_column("connector", no_wrap=True)
    failed.add_column("errors", overflow="fold")
    for cid, st in sorted(p.connectors.items()):
        rate = st.get("current_rate")
        cells = [
            str(st.get("calls", 0)),
            str(st.get("successes", 0)),
            str(st.get("retries", 0)),
            str(st.get("token_refreshes", 0)),
            str(st.get("dlq_entries", 0)),
            "-" if rate is None else f"{rate:.0f}",
        ]
        table.rows.append((cid, cells))
        errors = st.get("failures") or {}
        if any(errors.values()):
            failed.add_row(cid, compact_errors(errors))
    parts: list[Any] = [table]
    if failed.row_count:
        parts.append(failed)
    parts.append(
        Text(
            f"writes issued {p.writes_issued} · errors reaching workflows: "
            f"{compact_errors(p.surfaced)}"
        )
    )
    return Group(*parts)


def connector_table(card: Scorecard) -> KeyedTable:
    """Per-connector figures: counts, call vs wire latency, time queued in the limiter."""
    conns = KeyedTable(
        f"{card.scenario} · {card.mode} · profile {card.profile} · seed {card.seed} · "
        f"{card.duration_seconds:.0f}s",
        "connector",
        [
            "tries",
            "ok",
            "ok/s",
            "retry",
            "refr",
            "DLQ",
            "call ms\np50/p99",
            "wire ms\np50/p99",
            "wait\ns",
        ],
    )
    for c in card.connectors:
        conns.rows.append(
            (
                c.connector,
                [
                    str(c.attempts),
                    str(c.successes),
                    f"{c.goodput_rps:.1f}",
                    str(c.retries),
                    str(c.token_refreshes),
                    str(c.dlq_entries),
                    _p50_p99(c.latency_p50, c.latency_p99),
                    _p50_p99(c.attempt_latency_p50, c.attempt_latency_p99),
                    f"{c.limiter_wait_seconds:.0f}",
                ],
            )
        )
    return conns


def errors_table(card: Scorecard) -> Table | None:
    """Failed logical calls by class, one compact line per connector (None if there were none)."""
    rows = [
        (c.connector, compact_errors(c.errors)) for c in card.connectors if any(c.errors.values())
    ]
    if not rows:
        return None
    table = _table("failed calls by class (after the AAM's retries)")
    table.add_column("connector", no_wrap=True)
    table.add_column("errors", overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def invariants_table(card: Scorecard) -> Table:
    inv = _table("invariants (checked against the farm's ledger)")
    inv.add_column("invariant", no_wrap=True)
    inv.add_column("result", no_wrap=True)
    inv.add_column("detail", overflow="fold")
    for i in card.invariants:
        detail = i.detail.removeprefix("not exercised: ")  # the result column already says so
        inv.add_row(i.name, _status(i.status), detail)
    return inv


def scorecard_tables(card: Scorecard) -> Group:
    """The scorecard: per-connector figures, errors, the invariants, and the closing line."""
    parts: list[Any] = [Text(""), connector_table(card), Text(LATENCY_CAPTION, style="dim")]
    errors = errors_table(card)
    if errors is not None:
        parts += [Text(""), errors]
    parts += [Text(""), invariants_table(card), _closing(card)]
    return Group(*parts)


def _closing(card: Scorecard, *, label: str = "verdict") -> Text:
    """``verdict: PASSED — 6 passed, 0 failed, 2 not exercised (…)`` with the verdict coloured."""
    line = closing_line(card)
    prefix = f"{card.profile}: {card.verdict}"
    return Text.assemble(f"{label}: ", _verdict(card.verdict), line[len(prefix) :])


def _status(status: InvariantStatus | str) -> Text:
    label, style = STATUS_TEXT.get(status, (status, ""))
    return Text(label, style=style)


def comparison_table(cards: list[Scorecard]) -> Table:
    """Profiles side by side: totals, errors by class, each invariant, the verdict."""
    table = _table(
        f"{cards[0].scenario} · {cards[0].mode} · seed {cards[0].seed}: profiles compared"
    )
    table.add_column("", no_wrap=True)
    for card in cards:
        table.add_column(card.profile, justify="right", no_wrap=True)
    totals = [c.totals() for c in cards]
    rows = [
        ("goodput (calls/s)", lambda t: f"{t['goodput_rps']:.1f}"),
        ("attempts", lambda t: str(t["attempts"])),
        (
            "success rate",
            lambda t: "-" if t["success_rate"] is None else f"{t['success_rate']:.1%}",
        ),
        ("retries", lambda t: str(t["retries"])),
        ("token refreshes", lambda t: str(t["token_refreshes"])),
        ("DLQ entries", lambda t: str(t["dlq_entries"])),
        ("call p50/p99 ms", lambda t: _p50_p99(t["p50_seconds"], t["p99_seconds"])),
        ("wire p50/p99 ms", lambda t: _p50_p99(t["wire_p50_seconds"], t["wire_p99_seconds"])),
        ("limiter wait s", lambda t: f"{t['limiter_wait_seconds']:.0f}"),
    ]
    for label, fmt in rows:
        table.add_row(label, *(fmt(t) for t in totals))
    classes = sorted({k for t in totals for k, v in t["errors"].items() if v})
    for cls in classes:
        table.add_row(
            f"failed: {SHORT_CLASS.get(cls, cls)}",
            *(str(t["errors"].get(cls, 0)) for t in totals),
        )
    if not classes:
        table.add_row("failed calls", *("0" for _ in totals))
    table.add_section()
    names = list(dict.fromkeys(i.name for c in cards for i in c.invariants))
    for name in names:
        cells: list[Text | str] = []
        for card in cards:
            try:
                cells.append(_status(card.invariant(name).status))
            except KeyError:
                cells.append("-")
        table.add_row(name, *cells)
    table.add_row("not exercised", *(str(c.invariant_counts()["not_exercised"]) for c in cards))
    table.add_row("verdict", *(_verdict(c.verdict) for c in cards))
    return table


def comparison(cards: list[Scorecard]) -> Group:
    """The comparison table, what its latency rows mean, and each profile's closing line."""
    return Group(
        Text(""),
        comparison_table(cards),
        Text(LATENCY_CAPTION, style="dim"),
        *(_closing(card, label=card.profile) for card in cards),
    )
