"""A run as one self-contained HTML file: verdict, invariants, per-connector charts, fault ledger.

Everything is inline (CSS and SVG charts, no script, no font or image fetched), so the file opens
offline, from a mail attachment or a CI artifact. The charts are rebuilt from the run's stored
``tick`` events, like the console's run page.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

from workflows.health import AMBER_ERROR_RATIO, BANDS, RED_ERROR_RATIO

#: Colours of the failure classes (Carbon's categorical palette), cycled in first-seen order.
PALETTE = (
    "#6929c4", "#1192e8", "#005d5d", "#9f1853", "#fa4d56", "#570408", "#198038", "#002d9c",
    "#ee538b", "#b28600", "#009d9a", "#012749", "#8a3800", "#a56eff",
)  # fmt: skip
SUCCESS_COLOUR = "#24a148"
STATUS_COLOUR = {"pass": "#24a148", "fail": "#da1e28", "not_exercised": "#8d8d8d"}
W, H, PAD = 520, 160, 34


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def per_second(times: list[float], values: list[float]) -> list[float]:
    """Rates between consecutive samples of a cumulative counter (a reset counts from zero)."""
    out = [0.0]
    for i in range(1, len(values)):
        dt = max(times[i] - times[i - 1], 1e-6)
        dv = values[i] - values[i - 1]
        out.append((values[i] if dv < 0 else dv) / dt)
    return out


def svg_chart(title: str, times: list[float], series: list[tuple[str, str, list[float]]]) -> str:
    """A small line chart: ``series`` is (label, colour, values) over ``times`` (seconds)."""
    if not times or not series:
        return f'<figure class="chart"><figcaption>{_e(title)}</figcaption><p>no data</p></figure>'
    t0, t1 = times[0], times[-1]
    span = max(t1 - t0, 1.0)
    top = max([max(v) for _, _, v in series if v] + [1.0])
    x = [PAD + (t - t0) / span * (W - PAD - 8) for t in times]

    def y(v: float) -> float:
        return H - 20 - v / top * (H - 30)

    lines = []
    for label, colour, values in series:
        points = " ".join(f"{x[i]:.1f},{y(v):.1f}" for i, v in enumerate(values))
        lines.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{points}">'
            f"<title>{_e(label)}</title></polyline>"
        )
    legend = " ".join(
        f'<span class="key"><i style="background:{c}"></i>{_e(label)}</span>'
        for label, c, _ in series
    )
    axes = (
        f'<line x1="{PAD}" y1="{H - 20}" x2="{W - 8}" y2="{H - 20}" class="axis"/>'
        f'<line x1="{PAD}" y1="10" x2="{PAD}" y2="{H - 20}" class="axis"/>'
        f'<text x="{PAD - 4}" y="16" text-anchor="end">{top:.3g}</text>'
        f'<text x="{PAD - 4}" y="{H - 20}" text-anchor="end">0</text>'
        f'<text x="{PAD}" y="{H - 4}">0 s</text>'
        f'<text x="{W - 8}" y="{H - 4}" text-anchor="end">{span:.0f} s</text>'
    )
    return (
        f'<figure class="chart"><figcaption>{_e(title)}</figcaption>'
        f'<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
        f'aria-label="{_e(title)}">{axes}{"".join(lines)}</svg>'
        f'<div class="legend">{legend}</div></figure>'
    )


def connector_charts(cid: str, ticks: list[dict[str, Any]]) -> str:
    """The four charts of one connector from the run's ticks (rates per second)."""
    rows = [(e["t"], e["data"]["connectors"][cid]) for e in ticks if cid in e["data"]["connectors"]]
    if len(rows) < 2:
        return f"<p>{_e(cid)}: not enough samples to chart.</p>"
    times = [t for t, _ in rows]
    classes: list[str] = []
    for _, c in rows:
        for cls in c["failures"]:
            if cls not in classes:
                classes.append(cls)
    calls = [("successes", SUCCESS_COLOUR, per_second(times, [c["ok"] for _, c in rows]))]
    for i, cls in enumerate(classes):
        values = [float(c["failures"].get(cls, 0)) for _, c in rows]
        calls.append((f"failed: {cls}", PALETTE[i % len(PALETTE)], per_second(times, values)))

    def one(key: str) -> list[float]:
        return per_second(times, [float(c.get(key, 0)) for _, c in rows])

    return (
        f'<section class="connector"><h3>{_e(cid)}</h3><div class="charts">'
        + svg_chart("calls per second: successes vs failures by class", times, calls)
        + svg_chart("retries per second", times, [("retries", "#1192e8", one("retries"))])
        + svg_chart(
            "token refreshes per second",
            times,
            [("token refreshes", "#6929c4", one("token_refreshes"))],
        )
        + svg_chart(
            "DLQ entries (cumulative)",
            times,
            [("DLQ entries", "#da1e28", [float(c.get("dlq", 0)) for _, c in rows])],
        )
        + "</div></section>"
    )


def _fault_table(ticks: list[dict[str, Any]]) -> str:
    from workflows.fault_ledger import fault_ledger

    rows = fault_ledger(ticks)
    if not rows:
        return "<p>No fault was injected during the run (or none was sampled).</p>"
    t0 = ticks[0]["t"]
    totals: dict[tuple[str, str, str], list[float]] = {}
    for r in rows:
        key = (r["service"], r["tenant"], r["kind"])
        entry = totals.setdefault(key, [0, r["t"], r["t"]])
        entry[0] += r["count"]
        entry[2] = r["t"]
    body = "".join(
        f"<tr><td>{_e(s)}</td><td>{_e(t)}</td><td>{_e(k)}</td><td class=num>{int(n)}</td>"
        f"<td class=num>{first - t0:.0f} s</td><td class=num>{last - t0:.0f} s</td></tr>"
        for (s, t, k), (n, first, last) in sorted(totals.items())
    )
    return (
        "<table><thead><tr><th>service</th><th>tenant</th><th>fault</th><th>injected</th>"
        "<th>first</th><th>last</th></tr></thead><tbody>" + body + "</tbody></table>"
    )


def _invariants(card: dict[str, Any]) -> str:
    rows = []
    for inv in card.get("invariants", []):
        status = inv.get("status") or ("pass" if inv.get("passed") else "fail")
        colour = STATUS_COLOUR.get(status, "#8d8d8d")
        rows.append(
            f'<tr><td>{_e(inv.get("name"))}</td><td><b style="color:{colour}">'
            f"{_e(status.replace('_', ' '))}</b></td><td>{_e(inv.get('detail') or '')}</td></tr>"
        )
    return (
        "<table><thead><tr><th>invariant</th><th>status</th><th>detail</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _connectors_table(card: dict[str, Any]) -> str:
    rows = []
    for c in card.get("connectors", []):
        errors = " ".join(f"{k}:{v}" for k, v in sorted((c.get("errors") or {}).items()))
        rows.append(
            f"<tr><td>{_e(c['connector'])}</td><td class=num>{c.get('calls', 0)}</td>"
            f"<td class=num>{c.get('successes', 0)}</td><td class=num>{c.get('retries', 0)}</td>"
            f"<td class=num>{c.get('token_refreshes', 0)}</td>"
            f"<td class=num>{c.get('dlq_entries', 0)}</td><td>{_e(errors)}</td></tr>"
        )
    return (
        "<table><thead><tr><th>connector</th><th>calls</th><th>ok</th><th>retries</th>"
        "<th>token refreshes</th><th>DLQ</th><th>failures by class</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


CSS = """
body{font-family:"IBM Plex Sans",system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;
 background:#161616;color:#f4f4f4}
main{max-width:1120px;margin:0 auto;padding:24px}
h1{font-weight:300;margin:0 0 4px}
h2{font-weight:400;border-bottom:1px solid #393939;padding-top:12px}
.verdict{display:inline-block;padding:4px 12px;font-weight:600;border-radius:2px}
.PASSED{background:#24a148;color:#fff}.FAILED{background:#da1e28;color:#fff}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #393939;vertical-align:top}
th{background:#262626;font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:8px}
.chart{margin:0;background:#262626;padding:8px}figcaption{font-size:13px;color:#c6c6c6}
svg text{fill:#a8a8a8;font-size:10px}.axis{stroke:#6f6f6f;stroke-width:1}
.legend{font-size:12px}.key{margin-right:10px}.key i{display:inline-block;width:10px;height:10px;
 margin-right:4px}
.meta{color:#c6c6c6}
"""


def render_report(run: dict[str, Any], events: list[dict[str, Any]]) -> str:
    """The report of ``run`` (a history row with its scorecard) from its stored ``events``."""
    card = run.get("scorecard") or {}
    ticks = [e for e in events if e["kind"] == "tick" and e["data"].get("connectors") is not None]
    connectors: list[str] = []
    for e in ticks:
        for cid in e["data"]["connectors"]:
            if cid not in connectors:
                connectors.append(cid)
    verdict = card.get("verdict") or run.get("status") or "unknown"
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    bands = ", ".join(f"{b.state} {b.color}" for b in BANDS)
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>AAM Gauntlet run {_e(run.get('id'))}</title>",
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<style>{CSS}</style></head><body><main>",
        f"<h1>{_e(run.get('scenario'))} · {_e(run.get('profile'))} · {_e(run.get('mode'))}</h1>",
        f'<p><span class="verdict {_e(verdict)}" data-testid="report-verdict">{_e(verdict)}</span>',
        f' <span class="meta">run {_e(run.get("id"))}, seed {_e(run.get("seed"))}, started '
        f"{_e(run.get('started_at'))}, finished {_e(run.get('finished_at'))}; report generated "
        f"{generated}</span></p>",
    ]
    if run.get("error"):
        parts.append(f"<p><b>error:</b> {_e(run['error'])}</p>")
    if card:
        totals = card.get("totals") or {}
        if totals:
            parts.append(
                "<p class=meta>"
                + " · ".join(f"{_e(k)}: {_e(v)}" for k, v in totals.items() if v is not None)
                + "</p>"
            )
        parts += ["<h2>Invariants</h2>", _invariants(card)]
        parts += ["<h2>Connectors</h2>", _connectors_table(card)]
    parts.append("<h2>Per-connector charts</h2>")
    parts.append(
        f"<p class=meta>{len(ticks)} samples, one a second. Topology bands: error ratio ≥ "
        f"{AMBER_ERROR_RATIO:g} degraded, ≥ {RED_ERROR_RATIO:g} failing ({bands}).</p>"
    )
    parts += [connector_charts(cid, ticks) for cid in connectors] or ["<p>No samples stored.</p>"]
    parts += ["<h2>Fault ledger</h2>", _fault_table(ticks)]
    parts.append("</main></body></html>")
    return "".join(parts)
