"""The invariants of DESIGN.md, checked against the farm's ledger and counters.

Inputs are plain data (the journal the workflows kept, the farm's ledger and status, the AAM's
per-connector counters, the DLQ state), so every check is testable without a farm or an AAM.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from workflows.journal import RunJournal
from workflows.scenario import Thresholds
from workflows.scorecard import InvariantResult

#: Farm chaos level -> rate-limit factor (farm/README.md, "Chaos levels").
RATE_FACTOR = {"off": 1.0, "calm": 1.0, "mild": 1.0, "storm": 0.5, "hell": 0.2}
#: Error classes a retry can fix; what is left of them is what the AAM failed to absorb.
TRANSIENT_CLASSES = ("server_error", "network_error", "timeout", "rate_limit")
#: The outcome recorded when a workflow got an exception outside the AAM's error tree.
UNCLASSIFIED = "unclassified"
INVARIANT_NAMES = (
    "no_lost_writes",
    "no_duplicate_writes",
    "auth_transparent",
    "rate_limit_etiquette",
    "drift_handled",
    "bounded_dlq",
    "retry_success_rate",
    "errors_classified",
    "bounded_load_amplification",
)


@dataclass
class ConnectorEvidence:
    """One connector's counters: the farm's view and the AAM's."""

    connector: str
    service: str
    tenant: str
    allowed_rps: float
    burst: int
    farm: dict[str, int] = field(default_factory=dict)  # /admin/status tenant counters
    faults: dict[str, int] = field(default_factory=dict)  # ledger faults by kind
    aam_calls: int = 0


@dataclass
class RunEvidence:
    """Everything the checker needs about one finished run."""

    duration: float
    journal: RunJournal
    ledger_writes: list[dict[str, Any]]
    drift_events: list[dict[str, Any]]
    connectors: list[ConnectorEvidence]
    dlq_backlog: int  # entries pending when chaos ended, before any replay
    dlq_pending_ops: set[str]  # operation ids still sitting in the DLQ at check time
    drift_workflow_ran: bool = False
    replay: dict[str, Any] = field(default_factory=dict)
    #: Services the drift-sensitive workflow read; None = every service (drift events elsewhere
    #: are not something that workflow could have handled).
    drift_services: set[str] | None = None


def check_all(evidence: RunEvidence, thresholds: Thresholds) -> list[InvariantResult]:
    """Every invariant, in the scorecard's order."""
    results = [
        no_lost_writes(evidence),
        no_duplicate_writes(evidence),
        auth_transparent(evidence),
        rate_limit_etiquette(evidence, thresholds),
        drift_handled(evidence),
        bounded_dlq(evidence, thresholds),
        retry_success_rate(evidence, thresholds),
        errors_classified(evidence),
    ]
    if thresholds.max_load_amplification is not None:
        results.append(bounded_load_amplification(evidence, thresholds.max_load_amplification))
    return results


def _committed_by_lookup(evidence: RunEvidence) -> Counter[tuple[str, str, str]]:
    return Counter(
        (str(w.get("service")), str(w.get("tenant")), str(w.get("lookup_value")))
        for w in evidence.ledger_writes
        if w.get("lookup_value") is not None
    )


def no_lost_writes(evidence: RunEvidence) -> InvariantResult:
    """Every write issued is committed in the farm or sits in the DLQ."""
    committed = _committed_by_lookup(evidence)
    considered = lost = in_dlq = unresolved = 0
    sample: list[str] = []
    for op_id, write in evidence.journal.writes.items():
        if write.outcome in ("cancelled", "pending"):
            unresolved += 1  # still in flight when the run stopped: neither side can be judged
            continue
        considered += 1
        if committed[(write.service, write.tenant, op_id)] >= 1:
            continue
        if op_id in evidence.dlq_pending_ops:
            in_dlq += 1
            continue
        lost += 1
        if len(sample) < 3:
            sample.append(f"{op_id} ({write.connector}, {write.error_class or write.outcome})")
    figures = {"issued": considered, "lost": lost, "in_dlq": in_dlq, "unresolved": unresolved}
    if not considered:
        why = f"no write finished ({unresolved} still in flight)" if unresolved else "no writes"
        return InvariantResult.unexercised("no_lost_writes", why + " issued", figures)
    detail = f"{considered} writes issued, {lost} neither committed nor in the DLQ"
    if in_dlq:
        detail += f", {in_dlq} waiting in the DLQ"
    if sample:
        detail += "; e.g. " + ", ".join(sample)
    return InvariantResult(name="no_lost_writes", passed=lost == 0, detail=detail, figures=figures)


def no_duplicate_writes(evidence: RunEvidence) -> InvariantResult:
    """At most one committed effect per logical write (operation id / idempotency key)."""
    ours = {(w.service, w.tenant, op) for op, w in evidence.journal.writes.items()}
    by_lookup = _committed_by_lookup(evidence)
    dupes = {k: n for k, n in by_lookup.items() if k in ours and n > 1}
    by_key = Counter(
        (str(w.get("service")), str(w.get("tenant")), str(w.get("idempotency_key")))
        for w in evidence.ledger_writes
        if w.get("idempotency_key")
    )
    key_dupes = {k: n for k, n in by_key.items() if n > 1}
    extra = sum(n - 1 for n in dupes.values())
    figures = {
        "committed": sum(by_lookup[k] for k in ours),
        "duplicated_writes": len(dupes),
        "extra_effects": extra,
        "duplicated_keys": len(key_dupes),
    }
    passed = not dupes and not key_dupes
    if passed and not ours and not by_key:
        return InvariantResult.unexercised("no_duplicate_writes", "no writes issued", figures)
    if passed:
        detail = f"{figures['committed']} committed effects, each logical write at most once"
    else:
        sample = ", ".join(f"{k[2]} x{n}" for k, n in list(dupes.items())[:5])
        detail = (
            f"{len(dupes)} logical writes committed more than once ({extra} extra effects)"
            + (f"; e.g. {sample}" if sample else "")
            + (f"; {len(key_dupes)} idempotency keys committed twice" if key_dupes else "")
        )
    return InvariantResult(
        name="no_duplicate_writes", passed=passed, detail=detail, figures=figures
    )


def auth_transparent(evidence: RunEvidence) -> InvariantResult:
    """No auth failure reaches a workflow while the credentials are valid."""
    expired = evidence.journal.surfaced_total("auth_expired")
    invalid = evidence.journal.surfaced_total("invalid_creds")
    farm_401 = sum(c.farm.get("401", 0) for c in evidence.connectors)
    tokens = sum(c.farm.get("tokens_issued", 0) for c in evidence.connectors)
    figures = {
        "auth_expired_surfaced": expired,
        "invalid_creds_surfaced": invalid,
        "farm_401": farm_401,
        "tokens_issued": tokens,
    }
    passed = expired == 0 and invalid == 0
    rotated = any(c.farm.get("tokens_issued", 0) >= 2 for c in evidence.connectors)
    if passed and farm_401 == 0 and not rotated:
        # Nothing expired, was refused or was refreshed: the credentials were never put to test.
        why = "no token expired or was refreshed and no 401 answered"
        return InvariantResult.unexercised(
            "auth_transparent", f"{why} ({tokens} tokens issued)", figures
        )
    detail = (
        f"{expired} auth_expired and {invalid} invalid_creds reached workflows "
        f"(farm answered 401 {farm_401} times, issued {tokens} tokens)"
    )
    return InvariantResult(name="auth_transparent", passed=passed, detail=detail, figures=figures)


def rate_limit_etiquette(evidence: RunEvidence, thresholds: Thresholds) -> InvariantResult:
    """Per connector: the share of attempts refused by the token bucket, and the goodput ratio.

    Random 429 spikes the farm injects (``rate_limit_spike`` faults) are not the client's fault
    and are subtracted. Goodput ratio = 2xx answers / the work the connector was entitled to
    send (its attempts, capped at allowed rate * duration + burst).
    """
    max_share = thresholds.max_rate_limited_share or 0.0
    min_ratio = thresholds.min_goodput_ratio or 0.0
    worst_share, worst_ratio = 0.0, 1.0
    worst_share_conn = worst_ratio_conn = ""
    per: dict[str, dict[str, float]] = {}
    for c in evidence.connectors:
        calls = c.farm.get("calls", 0)
        if calls <= 0:
            continue
        refused = max(0, c.farm.get("429", 0) - c.faults.get("rate_limit_spike", 0))
        share = refused / calls
        entitled = min(calls, c.allowed_rps * evidence.duration + c.burst)
        ratio = min(1.0, c.farm.get("2xx", 0) / entitled) if entitled > 0 else 1.0
        per[c.connector] = {"refused_share": round(share, 4), "goodput_ratio": round(ratio, 4)}
        if share > worst_share or not worst_share_conn:
            worst_share, worst_share_conn = share, c.connector
        if ratio < worst_ratio or not worst_ratio_conn:
            worst_ratio, worst_ratio_conn = ratio, c.connector
    if not per:
        return InvariantResult.unexercised("rate_limit_etiquette", "no calls")
    passed = worst_share <= max_share and worst_ratio >= min_ratio
    detail = (
        f"worst 429 share {worst_share:.1%} ({worst_share_conn}, limit {max_share:.0%}); "
        f"worst goodput ratio {worst_ratio:.0%} ({worst_ratio_conn}, floor {min_ratio:.0%})"
    )
    return InvariantResult(
        name="rate_limit_etiquette", passed=passed, detail=detail, figures={"connectors": per}
    )


def drift_handled(evidence: RunEvidence) -> InvariantResult:
    """The drift-sensitive workflow never returned a value that differs from the ground truth."""
    j = evidence.journal
    services = evidence.drift_services
    fired = [e for e in evidence.drift_events if services is None or e.get("service") in services]
    figures = {
        "values_checked": j.drift_values_checked,
        "wrong_values": j.drift_mismatch_count,
        "refusals": j.drift_refusals,
        "drift_events": len(fired),
    }
    if not evidence.drift_workflow_ran:
        return InvariantResult.unexercised(
            "drift_handled", "no drift-sensitive workflow in this scenario", figures
        )
    passed = j.drift_mismatch_count == 0
    if passed and (not fired or j.drift_values_checked + j.drift_refusals == 0):
        # A wrong value always fails; without a drift the AAM had to handle, a clean read proves
        # nothing about drift handling.
        why = (
            "no drift fired on the services the drift-sensitive workflow read"
            if not fired
            else "drift fired but the drift-sensitive workflow checked no value"
        )
        return InvariantResult.unexercised(
            "drift_handled", f"{why} ({j.drift_values_checked} values checked)", figures
        )
    detail = (
        f"{j.drift_values_checked} values checked against ground truth, "
        f"{j.drift_mismatch_count} wrong, {j.drift_refusals} refused as schema_drift; "
        f"{len(fired)} drift events fired"
    )
    if j.drift_mismatches:
        m = j.drift_mismatches[0]
        detail += f"; e.g. {m.connector} {m.resource}/{m.record_id}.{m.field}: "
        detail += f"expected {m.expected!r}, got {m.got!r}"
    if not fired:
        detail += " (no drift fired during the run)"
    return InvariantResult(name="drift_handled", passed=passed, detail=detail, figures=figures)


def bounded_dlq(evidence: RunEvidence, thresholds: Thresholds) -> InvariantResult:
    """The DLQ backlog the chaos left behind stays under the mode's limit."""
    limit = thresholds.max_dlq_entries if thresholds.max_dlq_entries is not None else 99
    passed = evidence.dlq_backlog <= limit
    detail = f"{evidence.dlq_backlog} entries when chaos ended (limit {limit})"
    if evidence.replay:
        detail += (
            f"; replay: {evidence.replay.get('replayed', 0)} replayed, "
            f"{evidence.replay.get('failed', 0)} failed again"
        )
    figures = {"backlog": evidence.dlq_backlog, "limit": limit, "replay": evidence.replay}
    if not evidence.journal.writes and not evidence.dlq_backlog:
        return InvariantResult.unexercised("bounded_dlq", "no writes issued", figures)
    return InvariantResult(name="bounded_dlq", passed=passed, detail=detail, figures=figures)


def retry_success_rate(evidence: RunEvidence, thresholds: Thresholds) -> InvariantResult:
    """Share of the transient faults the farm injected that never reached a workflow.

    Faults come from the farm's counters (5xx, dropped connections, stalls, 429s); what reached
    the workflows is the journal's surfaced errors of the transient classes.
    """
    floor = thresholds.min_retry_success_rate or 0.0
    faulted = sum(
        c.farm.get("5xx", 0)
        + c.farm.get("429", 0)
        + c.farm.get("network_faults", 0)
        + c.farm.get("timeouts", 0)
        for c in evidence.connectors
    )
    surfaced = sum(evidence.journal.surfaced_total(cls) for cls in TRANSIENT_CLASSES)
    figures: dict[str, float] = {"transient_faults": faulted, "surfaced": surfaced}
    if faulted == 0:
        if surfaced == 0:
            return InvariantResult.unexercised(
                "retry_success_rate", "no transient faults injected", figures
            )
        detail = f"no transient faults injected, yet {surfaced} transient errors surfaced"
        return InvariantResult(
            name="retry_success_rate", passed=False, detail=detail, figures=figures
        )
    rate = max(0.0, 1.0 - surfaced / faulted)
    figures["rate"] = round(rate, 4)
    detail = (
        f"{rate:.1%} of {faulted} transient faults absorbed "
        f"({surfaced} reached workflows; floor {floor:.0%})"
    )
    return InvariantResult(
        name="retry_success_rate", passed=rate >= floor, detail=detail, figures=figures
    )


def bounded_load_amplification(evidence: RunEvidence, limit: float) -> InvariantResult:
    """HTTP attempts the farm received per logical call stay under ``limit`` (no retry storm)."""
    attempts = sum(c.farm.get("calls", 0) for c in evidence.connectors)
    calls = sum(c.aam_calls for c in evidence.connectors)
    ratio = attempts / calls if calls else 0.0
    figures = {"farm_attempts": attempts, "logical_calls": calls, "ratio": round(ratio, 3)}
    if not calls and not attempts:
        return InvariantResult.unexercised("bounded_load_amplification", "no calls", figures)
    detail = f"{ratio:.2f} farm attempts per logical call ({attempts}/{calls}; limit {limit:g})"
    return InvariantResult(
        name="bounded_load_amplification", passed=ratio <= limit, detail=detail, figures=figures
    )


def errors_classified(evidence: RunEvidence) -> InvariantResult:
    """Every failure that reached a workflow was one of the AAM's error classes."""
    n = evidence.journal.surfaced_total(UNCLASSIFIED)
    detail = (
        "every failure reaching workflows was an AAM error class"
        if n == 0
        else f"{n} failures reached workflows outside the AAM's error tree (see the log)"
    )
    return InvariantResult(
        name="errors_classified", passed=n == 0, detail=detail, figures={"unclassified": n}
    )
