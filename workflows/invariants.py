"""The invariants of DESIGN.md, judged on evidence the AAM cannot shape.

Every check is a pure function of :class:`~workflows.evidence.JudgeEvidence` (the farm's attempt
log, ledger, token facts, drift and record versions, plus what the workflows received) and the
scenario's thresholds, so each is testable without a farm or an AAM. The AAM's own error labels
appear in details as diagnostics only; no decision rests on them.

Each invariant says what it is about and is ``not_exercised`` when the run produced nothing of
the kind. A run with no completed logical operation cannot be judged at all (:func:`unjudgeable`).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from workflows.evidence import (
    ConnectorLimits,
    FarmAttempt,
    JudgeEvidence,
    Operation,
    RecordTruth,
    RecordVersion,
    canonical_sha256,
)
from workflows.scenario import Thresholds
from workflows.scorecard import InvariantResult

#: Farm chaos level -> rate-limit factor (farm/README.md, "Chaos levels").
RATE_FACTOR = {"off": 1.0, "calm": 1.0, "mild": 1.0, "storm": 0.5, "hell": 0.2}
INVARIANT_NAMES = (
    "operations_succeed",
    "no_lost_writes",
    "no_duplicate_writes",
    "writes_intact",
    "reads_correct",
    "reads_complete",
    "reads_fresh",
    "drift_handled",
    "auth_transparent",
    "token_etiquette",
    "rate_limit_etiquette",
    "bounded_dlq",
    "retry_success_rate",
    "bounded_load_amplification",
)
#: Seconds a write's commit may trail the moment it was reported (clock granularity, one host).
COMMIT_REPORT_SLACK = 0.25
#: An attempt this soon after a Retry-After answer was already on its way (in flight) when the
#: client heard the answer: it is not a violation.
IN_FLIGHT_GRACE = 0.1
#: A Retry-After counts as honoured when the next attempt waited at least this share of it.
RETRY_AFTER_SHARE = 0.9
SAMPLE = 5


def check_all(evidence: JudgeEvidence, thresholds: Thresholds) -> list[InvariantResult]:
    """Every invariant, in the scorecard's order."""
    reads = ReadFindings.of(evidence, thresholds)
    results = [
        operations_succeed(evidence, thresholds),
        no_lost_writes(evidence),
        no_duplicate_writes(evidence),
        writes_intact(evidence),
        reads.correct(),
        reads_complete(evidence),
        reads.fresh(),
        reads.drift(),
        auth_transparent(evidence),
        token_etiquette(evidence, thresholds),
        rate_limit_etiquette(evidence, thresholds),
        bounded_dlq(evidence, thresholds),
        retry_success_rate(evidence, thresholds),
    ]
    if thresholds.max_load_amplification is not None:
        results.append(bounded_load_amplification(evidence, thresholds.max_load_amplification))
    return results


def unjudgeable(evidence: JudgeEvidence) -> str | None:
    """Why the run cannot be judged (the verdict is ERROR), or ``None``."""
    if not evidence.completed():
        issued = len(evidence.operations)
        return (
            f"no logical operation completed ({issued} issued): the run proves nothing about "
            "the AAM"
        )
    return None


# --- helpers ------------------------------------------------------------------------------------


def _describe_attempts(attempts: list[FarmAttempt]) -> str:
    if not attempts:
        return "the farm saw no attempt"
    shown = []
    for a in attempts[:6]:
        shown.append(a.transport or str(a.status))
    more = f" +{len(attempts) - 6}" if len(attempts) > 6 else ""
    return f"farm saw {len(attempts)} attempts: {', '.join(shown)}{more}"


def _op_label(op: Operation) -> str:
    return f"{op.op_id} ({op.kind} {op.connector}{' ' + op.resource if op.resource else ''})"


def _ours(evidence: JudgeEvidence) -> dict[tuple[str, str, str], Operation]:
    """Write operations by (service, tenant, lookup value)."""
    return {
        (op.service, op.tenant, op.lookup_value): op
        for op in evidence.operations
        if op.kind == "write" and op.lookup_value is not None
    }


# --- operations ---------------------------------------------------------------------------------


def operations_succeed(evidence: JudgeEvidence, thresholds: Thresholds) -> InvariantResult:
    """The share of logical operations that succeeded, as the workflows saw it."""
    floor = thresholds.min_operation_success or 0.0
    done = evidence.completed()
    if not done:
        return InvariantResult.unexercised("operations_succeed", "no operation completed")
    ok = sum(1 for op in done if op.outcome == "ok")
    share = ok / len(done)
    by_op = evidence.attempts_by_op()
    failures = [op for op in done if op.outcome != "ok"]
    sample = [f"{_op_label(op)}: {_describe_attempts(by_op.get(op.op_id, []))}" for op in failures]
    figures: dict[str, Any] = {
        "completed": len(done),
        "succeeded": ok,
        "failed": sum(1 for op in failures if op.outcome == "failed"),
        "deferred": sum(1 for op in failures if op.outcome == "deferred"),
        "share": round(share, 4),
        "floor": floor,
        "failures": sample[:20],
    }
    detail = f"{ok} of {len(done)} operations succeeded ({share:.1%}; floor {floor:.0%})"
    if failures:
        detail += "; e.g. " + "; ".join(sample[:3])
    return InvariantResult(
        name="operations_succeed", passed=share >= floor, detail=detail, figures=figures
    )


# --- writes -------------------------------------------------------------------------------------


def no_lost_writes(evidence: JudgeEvidence) -> InvariantResult:
    """A write reported ``ok`` was committed when it was reported; a deferred one is committed
    by the end, or its DLQ replay reached the farm after the run (and was refused again).

    A write reported failed was not promised, so it cannot be lost (it counts against
    ``operations_succeed``). A write still in flight when the run stopped is not judged.
    """
    after = [a for a in evidence.attempts if a.at > evidence.finished_at]
    replayed = {(a.service, a.tenant or "", a.op) for a in after if a.method == "POST" and a.op}
    # Connectors the farm still refused after the run (none of their replayed attempts got a
    # 2xx): a parked write there cannot be delivered yet, so its absence proves nothing.
    answered_ok = {(a.service, a.tenant or "") for a in after if a.ok}
    still_down = {(a.service, a.tenant or "") for a in after} - answered_ok
    first_commit: dict[tuple[str, str, str], float] = {}
    for w in evidence.writes:
        if w.lookup_value is None:
            continue
        key = (w.service, w.tenant, str(w.lookup_value))
        first_commit[key] = min(first_commit.get(key, math.inf), w.committed_at)
    considered = late = lost = deferred = parked = 0
    sample: list[str] = []
    for key, op in _ours(evidence).items():
        if op.outcome not in ("ok", "deferred"):
            continue
        considered += 1
        committed = first_commit.get(key)
        if op.outcome == "deferred":
            deferred += 1
            if committed is None and (key in replayed or key[:2] in still_down):
                # the replay reached the farm and was refused, or the farm still refused the
                # connector's replay: parked, not provably lost
                parked += 1
            elif committed is None:
                lost += 1
                sample.append(f"{op.op_id} deferred, never committed nor replayed to the farm")
            continue
        if committed is None:
            lost += 1
            sample.append(f"{op.op_id} reported ok, never committed")
        elif op.finished_at is not None and committed > op.finished_at + COMMIT_REPORT_SLACK:
            late += 1
            sample.append(
                f"{op.op_id} reported ok {committed - op.finished_at:.2f} s before the farm "
                "committed it"
            )
    figures = {
        "promised": considered,
        "deferred": deferred,
        "in_dlq": parked,
        "lost": lost,
        "ok_before_commit": late,
    }
    if not considered:
        return InvariantResult.unexercised(
            "no_lost_writes", "no write was reported ok or deferred", figures
        )
    bad = lost + late
    detail = f"{considered} writes promised ({deferred} deferred): {lost} never committed"
    detail += f", {late} reported ok before they were committed"
    if parked:
        detail += f", {parked} still waiting in the DLQ (its replay reached the farm and failed)"
    if sample:
        detail += "; e.g. " + "; ".join(sample[:3])
    return InvariantResult(name="no_lost_writes", passed=bad == 0, detail=detail, figures=figures)


def no_duplicate_writes(evidence: JudgeEvidence) -> InvariantResult:
    """At most one committed effect per logical write (lookup value) and per idempotency key."""
    ours = _ours(evidence)
    by_lookup = Counter(
        (w.service, w.tenant, str(w.lookup_value))
        for w in evidence.writes
        if w.lookup_value is not None
    )
    dupes = {k: n for k, n in by_lookup.items() if k in ours and n > 1}
    by_key = Counter(
        (w.service, w.tenant, w.idempotency_key) for w in evidence.writes if w.idempotency_key
    )
    key_dupes = {k: n for k, n in by_key.items() if n > 1}
    committed = sum(by_lookup[k] for k in ours)
    figures = {
        "committed": committed,
        "duplicated_writes": len(dupes),
        "extra_effects": sum(n - 1 for n in dupes.values()),
        "duplicated_keys": len(key_dupes),
    }
    if not committed and not key_dupes:
        return InvariantResult.unexercised("no_duplicate_writes", "no write committed", figures)
    passed = not dupes and not key_dupes
    if passed:
        detail = f"{committed} committed effects, each logical write at most once"
    else:
        sample = ", ".join(f"{k[2]} x{n}" for k, n in list(dupes.items())[:SAMPLE])
        detail = f"{len(dupes)} logical writes committed more than once"
        detail += f" ({figures['extra_effects']} extra effects)"
        if sample:
            detail += f"; e.g. {sample}"
        if key_dupes:
            detail += f"; {len(key_dupes)} idempotency keys committed twice"
    return InvariantResult(
        name="no_duplicate_writes", passed=passed, detail=detail, figures=figures
    )


def writes_intact(evidence: JudgeEvidence) -> InvariantResult:
    """Every committed body equals what the workflow asked to write (all fields, canonical JSON)."""
    ours = _ours(evidence)
    checked = corrupt = 0
    sample: list[str] = []
    for w in evidence.writes:
        op = ours.get((w.service, w.tenant, str(w.lookup_value)))
        if op is None or op.body is None:
            continue
        checked += 1
        if canonical_sha256(op.body) != w.body_sha256:
            corrupt += 1
            if len(sample) < SAMPLE:
                sample.append(f"{op.op_id} ({op.connector} {w.resource}/{w.record_id})")
    figures = {"checked": checked, "corrupted": corrupt}
    if not checked:
        return InvariantResult.unexercised("writes_intact", "no write of ours committed", figures)
    detail = f"{checked} committed bodies compared with what was asked, {corrupt} differ"
    if sample:
        detail += "; e.g. " + ", ".join(sample)
    return InvariantResult(
        name="writes_intact", passed=corrupt == 0, detail=detail, figures=figures
    )


# --- reads --------------------------------------------------------------------------------------


def _equal(expected: Any, got: Any) -> bool:
    # Type-strict on purpose: "12.5" for 12.5 is wrong data (an unmapped retype), not a match.
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(expected) is type(got) and expected == got
    if isinstance(expected, int | float) and isinstance(got, int | float):
        return math.isclose(float(expected), float(got), rel_tol=1e-9, abs_tol=1e-9)
    return type(expected) is type(got) and expected == got


_MISSING = object()


@dataclass
class _Mismatch:
    op: Operation
    record_id: str
    field: str
    expected: Any
    got: Any

    def text(self) -> str:
        got = "<missing>" if self.got is _MISSING else repr(self.got)
        return (
            f"{self.op.connector} {self.op.resource}/{self.record_id}.{self.field}: "
            f"expected {self.expected!r}, got {got}"
        )


@dataclass
class ReadFindings:
    """One pass over every record the workflows received, feeding three invariants.

    A record is *correct* when, field by field (v1 names), it equals some version the farm ever
    held of it; *fresh* when the version it equals was in force during the operation (give or
    take the freshness window). Fields a drift step touched before the read are the business of
    ``drift_handled``; every other field of ``reads_correct``.
    """

    checked_records: int = 0
    checked_values: int = 0
    drift_values: int = 0
    changed_records: int = 0
    stale: list[str] | None = None
    wrong: list[_Mismatch] | None = None
    drift_wrong: list[_Mismatch] | None = None
    unknown: list[str] | None = None
    window: float = 1.0

    @classmethod
    def of(cls, evidence: JudgeEvidence, thresholds: Thresholds) -> ReadFindings:
        found = cls(stale=[], wrong=[], drift_wrong=[], unknown=[])
        found.window = thresholds.freshness_window_seconds or 1.0
        drifted: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        for d in evidence.drift:
            first = drifted[(d.service, d.resource)].get(d.field, math.inf)
            drifted[(d.service, d.resource)][d.field] = min(first, d.at)
        for op in evidence.operations:
            if op.outcome != "ok" or op.kind == "write" or op.resource is None:
                continue
            truth = evidence.truth.get((op.service, op.tenant, op.resource))
            if truth is None:
                continue
            for record in op.records:
                found._check(op, record, truth, drifted.get((op.service, op.resource), {}))
        return found

    def _check(
        self,
        op: Operation,
        record: dict[str, Any],
        truth: RecordTruth,
        drifted: dict[str, float],
    ) -> None:
        assert self.stale is not None and self.wrong is not None
        assert self.drift_wrong is not None and self.unknown is not None
        rid = str(record.get("id"))
        history = truth.versions.get(rid)
        end = (op.finished_at or op.started_at) + self.window
        candidates = [v for v in history or () if v.valid_from <= end]
        if not candidates:
            self.unknown.append(f"{op.connector} {op.resource}/{rid}")
            return
        self.checked_records += 1
        if len(history or ()) > 1:
            self.changed_records += 1
        finished = op.finished_at or op.started_at
        touched = {f for f, at in drifted.items() if at <= finished}
        # The version this record equals on the fields no drift touched; else the closest one.
        best, best_errors = candidates[-1], None
        for version in reversed(candidates):
            errors = self._diff(op, rid, record, version, skip=touched)
            if not errors:
                best, best_errors = version, []
                break
            if best_errors is None or len(errors) < len(best_errors):
                best, best_errors = version, errors
        assert best_errors is not None
        fields = [f for f in best.fields if f != "id"]
        self.checked_values += len([f for f in fields if f not in touched])
        self.wrong.extend(best_errors)
        drift_errors = [
            e for e in self._diff(op, rid, record, best, only=touched) if e.field in touched
        ]
        self.drift_values += len([f for f in fields if f in touched])
        self.drift_wrong.extend(drift_errors)
        if not best_errors:
            window = truth.versions_between(rid, op.started_at - self.window, end)
            in_force = {v.version for v in window}
            if best.version not in in_force:
                self.stale.append(
                    f"{op.connector} {op.resource}/{rid}: version {best.version} returned, "
                    f"version {max(in_force) if in_force else '?'} was current"
                )

    @staticmethod
    def _diff(
        op: Operation,
        rid: str,
        record: dict[str, Any],
        version: RecordVersion,
        *,
        skip: set[str] | None = None,
        only: set[str] | None = None,
    ) -> list[_Mismatch]:
        errors = []
        for name, expected in version.fields.items():
            if name == "id" or (skip and name in skip) or (only is not None and name not in only):
                continue
            got = record.get(name, _MISSING)
            if got is _MISSING:
                if name in op.require:
                    errors.append(_Mismatch(op, rid, name, expected, got))
                continue  # not asked for, and may be gone from the wire (drift removed it)
            if not _equal(expected, got):
                errors.append(_Mismatch(op, rid, name, expected, got))
        return errors

    def correct(self) -> InvariantResult:
        assert self.wrong is not None and self.unknown is not None
        figures = {
            "records": self.checked_records,
            "values": self.checked_values,
            "wrong_values": len(self.wrong),
            "unknown_records": len(self.unknown),
        }
        if not self.checked_records and not self.unknown:
            return InvariantResult.unexercised("reads_correct", "no record was read", figures)
        bad = len(self.wrong) + len(self.unknown)
        detail = (
            f"{self.checked_records} records ({self.checked_values} values) compared with the "
            f"farm's ground truth: {len(self.wrong)} wrong values, {len(self.unknown)} records "
            "the farm never held"
        )
        examples = [m.text() for m in self.wrong[:3]] + self.unknown[:2]
        if examples:
            detail += "; e.g. " + "; ".join(examples)
        return InvariantResult(
            name="reads_correct", passed=bad == 0, detail=detail, figures=figures
        )

    def fresh(self) -> InvariantResult:
        assert self.stale is not None
        figures = {
            "records": self.checked_records,
            "changed_records": self.changed_records,
            "stale": len(self.stale),
            "window_seconds": self.window,
        }
        if not self.changed_records:
            return InvariantResult.unexercised(
                "reads_fresh", "no record read had changed in the farm", figures
            )
        detail = (
            f"{self.changed_records} records read that the farm had updated: "
            f"{len(self.stale)} older than the version in force (window {self.window:g} s)"
        )
        if self.stale:
            detail += "; e.g. " + "; ".join(self.stale[:3])
        return InvariantResult(
            name="reads_fresh", passed=not self.stale, detail=detail, figures=figures
        )

    def drift(self) -> InvariantResult:
        assert self.drift_wrong is not None
        figures = {"values_checked": self.drift_values, "wrong_values": len(self.drift_wrong)}
        if not self.drift_values:
            return InvariantResult.unexercised(
                "drift_handled", "no value of a drifted field was read after its drift", figures
            )
        detail = (
            f"{self.drift_values} values of drifted fields compared with the ground truth, "
            f"{len(self.drift_wrong)} wrong"
        )
        if self.drift_wrong:
            detail += "; e.g. " + "; ".join(m.text() for m in self.drift_wrong[:3])
        return InvariantResult(
            name="drift_handled", passed=not self.drift_wrong, detail=detail, figures=figures
        )


def reads_complete(evidence: JudgeEvidence) -> InvariantResult:
    """A paginated read yields what it asked for: a full scan exactly the records that existed
    when it started (records created during it may or may not appear), a scan of the first N at
    least N distinct records when the collection held that many; none received twice."""
    scans = missing = twice = 0
    sample: list[str] = []
    for op in evidence.operations:
        if op.kind != "scan" or op.outcome != "ok" or op.resource is None:
            continue
        if not op.full_scan and op.max_records is None:
            continue
        truth = evidence.truth.get((op.service, op.tenant, op.resource))
        if truth is None:
            continue
        scans += 1
        ids = [str(r.get("id")) for r in op.records]
        seen = Counter(ids)
        dup = [i for i, n in seen.items() if n > 1]
        existing = truth.ids_existing_at(op.started_at)
        if op.full_scan:
            short = len(existing - set(seen))
            wanted = len(existing)
        else:
            wanted = min(op.max_records or 0, len(existing))
            short = max(0, wanted - len(seen))
        missing += short
        twice += len(dup)
        if (short or dup) and len(sample) < SAMPLE:
            sample.append(
                f"{_op_label(op)}: {len(ids)} records received, {short} of {wanted} "
                f"missing, {len(dup)} twice"
            )
    figures = {"scans": scans, "missing": missing, "duplicated": twice}
    if not scans:
        return InvariantResult.unexercised("reads_complete", "no paginated read completed", figures)
    detail = f"{scans} paginated reads: {missing} records missing, {twice} received twice"
    if sample:
        detail += "; e.g. " + "; ".join(sample[:3])
    return InvariantResult(
        name="reads_complete", passed=missing == 0 and twice == 0, detail=detail, figures=figures
    )


# --- auth ---------------------------------------------------------------------------------------


def _auth_refusal(a: FarmAttempt) -> bool:
    if a.transport is not None:
        return False
    if a.auth_refused is not None:  # the farm said why it refused
        return a.auth_refused
    # Inferred: a 403 that is the service's way of saying "rate limited" (a bucket refusal, an
    # injected spike, anything with a Retry-After) is not an auth refusal.
    if a.status == 401:
        return True
    return a.status == 403 and not a.rate_limited and a.fault is None and a.retry_after is None


def auth_transparent(evidence: JudgeEvidence) -> InvariantResult:
    """No operation fails because of an auth refusal while the tenant's credentials were valid.

    Judged from the farm's side: an operation whose last attempt the farm refused with 401/403
    surfaced an auth failure (the tenant's client credentials and keys stay valid all run)."""
    by_op = evidence.attempts_by_op()
    answered_401 = sum(1 for a in evidence.attempts if a.status == 401)
    invalidations = sum(t.invalidations for t in evidence.tokens.values())
    issued = sum(t.issued for t in evidence.tokens.values())
    surfaced = []
    for op in evidence.completed():
        if op.outcome == "ok":
            continue
        attempts = by_op.get(op.op_id, [])
        if attempts and _auth_refusal(attempts[-1]):
            surfaced.append(f"{_op_label(op)}: last attempt refused {attempts[-1].status}")
    figures = {
        "operations_failed_on_auth": len(surfaced),
        "farm_401": answered_401,
        "tokens_issued": issued,
        "token_invalidations": invalidations,
    }
    if not surfaced and not answered_401 and not invalidations:
        return InvariantResult.unexercised(
            "auth_transparent", "no token expired or rotated and no request was refused", figures
        )
    detail = (
        f"{len(surfaced)} operations failed on an auth refusal (farm answered 401 "
        f"{answered_401} times; {invalidations} tokens expired or rotated; {issued} issued)"
    )
    if surfaced:
        detail += "; e.g. " + "; ".join(surfaced[:3])
    return InvariantResult(
        name="auth_transparent", passed=not surfaced, detail=detail, figures=figures
    )


def token_etiquette(evidence: JudgeEvidence, thresholds: Thresholds) -> InvariantResult:
    """Token requests stay proportionate: about one per expiry or rotation, never one per call."""
    per = thresholds.max_tokens_per_invalidation or 2.0
    worst: tuple[float, str] = (0.0, "")
    rows: dict[str, dict[str, int]] = {}
    failed: list[str] = []
    for (service, tenant), facts in sorted(evidence.tokens.items()):
        if facts.issued == 0 and facts.invalidations == 0:
            continue
        allowed = math.ceil(per * (1 + facts.invalidations)) + 1
        rows[f"{service}:{tenant}"] = {
            "issued": facts.issued,
            "invalidations": facts.invalidations,
            "allowed": allowed,
        }
        ratio = facts.issued / allowed
        if ratio > worst[0]:
            worst = (ratio, f"{service}:{tenant}")
        if facts.issued > allowed:
            failed.append(
                f"{service}:{tenant} requested {facts.issued} tokens for "
                f"{facts.invalidations} expiries/rotations (allowed {allowed})"
            )
    if not rows:
        return InvariantResult.unexercised("token_etiquette", "no OAuth connector was used")
    issued = sum(r["issued"] for r in rows.values())
    inval = sum(r["invalidations"] for r in rows.values())
    detail = f"{issued} tokens requested for {inval} expiries/rotations over {len(rows)} connectors"
    if failed:
        detail += "; " + "; ".join(failed[:3])
    return InvariantResult(
        name="token_etiquette", passed=not failed, detail=detail, figures={"connectors": rows}
    )


# --- rate limits --------------------------------------------------------------------------------


def _retry_after_violations(attempts: list[FarmAttempt]) -> tuple[int, int, list[str]]:
    """(answers that asked to wait, attempts that did not wait, examples) for one connector.

    A rate-limit answer's Retry-After (the bucket's refusal or an injected spike, whatever status
    the service's dialect gives it: 429, or 403 like GitHub) covers the whole connector (the
    bucket is per tenant); any other answer's covers only the same operation's later attempts.
    Attempts that arrive within the in-flight grace were already on their way when the answer
    went out."""
    asked = violations = 0
    sample: list[str] = []
    windows: list[tuple[float, float, str | None]] = []  # (start, end, op or None = connector)
    for a in attempts:
        for start, end, op in windows:
            if start <= a.at < end and (op is None or op == a.op):
                violations += 1
                if len(sample) < 3:
                    sample.append(
                        f"{a.method} {a.path} {end - a.at:.2f} s before its Retry-After ended"
                    )
                break
        if a.retry_after is not None and a.retry_after > 0:
            asked += 1
            start = a.at + IN_FLIGHT_GRACE
            end = a.at + RETRY_AFTER_SHARE * a.retry_after
            # A rate-limit answer binds the connector; any other answer only the operation it
            # answered (and an attempt tied to no operation binds nothing the judge could check).
            if end > start and (a.rate_limit_answer or a.op is not None):
                windows.append((start, end, None if a.rate_limit_answer else a.op))
        windows = [w for w in windows if w[1] > a.at]
    return asked, violations, sample


def rate_limit_etiquette(evidence: JudgeEvidence, thresholds: Thresholds) -> InvariantResult:
    """Per connector: refusals by the token bucket, Retry-After honoured, and no gross under-use.

    * share of attempts the bucket refused (injected 429 spikes are not the client's fault);
    * attempts that arrived inside a Retry-After window the farm had given (after the in-flight
      grace), as a share of the Retry-After answers;
    * gross under-use: on a connector the bucket never refused and, where the service sends
      rate-limit headers, that they never told that its quota was used up (a client told so may
      wait for the reset), goodput below the floor of the allowed rate where the workflows
      could have sent twice the limit at the farm's answer time, while the client held its
      operations ``UNDER_USE_DELAY_SECONDS`` (median) beyond the farm's answers."""
    max_share = thresholds.max_rate_limited_share or 0.0
    max_violations = thresholds.max_retry_after_violation_share or 0.0
    floor = thresholds.min_goodput_ratio or 0.0
    by_op = evidence.attempts_by_op()
    per_tenant = {
        key: [a for a in attempts if a.at <= evidence.finished_at]  # the replay is not the run
        for key, attempts in evidence.attempts_by_tenant().items()
    }
    rows: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for lim in evidence.limits:
        attempts = per_tenant.get((lim.service, lim.tenant), [])
        if not attempts:
            continue
        refused = sum(1 for a in attempts if a.rate_limited)
        # The first refusals teach a client a limit nobody told it (the descriptor publishes the
        # calm limit; chaos cuts it): they are not held against it.
        share = max(0, refused - LEARNING_REFUSALS) / len(attempts)
        asked, violations, sample = _retry_after_violations(attempts)
        ok = sum(1 for a in attempts if a.ok)
        goodput = ok / evidence.duration
        row: dict[str, Any] = {
            "attempts": len(attempts),
            "refused_share": round(share, 4),
            "retry_after_answers": asked,
            "retry_after_violations": violations,
            "goodput_rps": round(goodput, 2),
            "allowed_rps": round(lim.allowed_rps, 2),
        }
        saturating = _could_saturate(lim, attempts)
        # A connector the farm had to refuse, or whose headers said its quota was used up,
        # reached its limit at least once: whatever it did next (waiting out a reset it was
        # told), it is not a gross under-user. Where the headers' figures are not in the attempt
        # log (an older farm), a header-reading client is not judged.
        told = [a.remaining for a in attempts if a.remaining is not None]
        told_to_wait = lim.advertises_limits and (not told or min(told) == 0)
        if saturating and lim.allowed_rps > 0 and refused == 0 and not told_to_wait:
            ratio = min(1.0, goodput / lim.allowed_rps)
            idle = _median_client_delay(evidence, lim.connector, by_op)
            row["goodput_ratio"] = round(ratio, 4)
            row["median_client_delay_s"] = None if idle is None else round(idle, 3)
            if ratio < floor and idle is not None and idle >= UNDER_USE_DELAY_SECONDS:
                problems.append(
                    f"{lim.connector} used {ratio:.0%} of its allowed "
                    f"{lim.allowed_rps:g} rps (floor {floor:.0%}) while holding each operation "
                    f"{idle:.2f} s (median) beyond the farm's answers"
                )
        rows[lim.connector] = row
        if share > max_share:
            problems.append(
                f"{lim.connector}: {share:.1%} of attempts refused by the rate limit "
                f"(limit {max_share:.0%})"
            )
        if asked and violations > max(1, max_violations * asked):
            problems.append(
                f"{lim.connector}: {violations} attempts ignored a Retry-After "
                f"({asked} given); e.g. {sample[0]}"
            )
    if not rows:
        return InvariantResult.unexercised("rate_limit_etiquette", "no attempt reached the farm")
    worst_share = max(r["refused_share"] for r in rows.values())
    violations_total = sum(r["retry_after_violations"] for r in rows.values())
    asked_total = sum(r["retry_after_answers"] for r in rows.values())
    detail = (
        f"worst 429 share {worst_share:.1%} (limit {max_share:.0%}); {violations_total} of the "
        f"attempts after {asked_total} Retry-After answers came too early"
    )
    ratios = [r["goodput_ratio"] for r in rows.values() if "goodput_ratio" in r]
    if ratios:
        detail += f"; worst goodput {min(ratios):.0%} of the allowed rate (floor {floor:.0%})"
    if problems:
        detail += "; " + "; ".join(problems[:3])
    return InvariantResult(
        name="rate_limit_etiquette",
        passed=not problems,
        detail=detail,
        figures={"connectors": rows},
    )


#: Bucket refusals per connector forgiven as the price of learning an unpublished limit.
LEARNING_REFUSALS = 5
#: Under-use is gross only when the client also held its operations this long (median, seconds)
#: beyond the farm's own answer times: a busy or slow machine adds milliseconds, not this.
UNDER_USE_DELAY_SECONDS = 0.5


def _median_client_delay(
    evidence: JudgeEvidence, connector: str, by_op: dict[str, list[FarmAttempt]]
) -> float | None:
    """Median over the connector's completed operations of (operation time as the workflow saw
    it) minus (the farm's answer time of its attempts): how long the client sat on them."""
    delays = []
    for op in evidence.operations:
        if op.connector != connector or not op.completed or op.finished_at is None:
            continue
        attempts = by_op.get(op.op_id)
        if not attempts:
            continue
        farm_time = sum(a.duration or 0.0 for a in attempts)
        delays.append(max(0.0, (op.finished_at - op.started_at) - farm_time))
    if not delays:
        return None
    delays.sort()
    return delays[len(delays) // 2]


#: Client-side time per attempt assumed on top of the farm's answer time (loopback, one hop).
CLIENT_OVERHEAD_SECONDS = 0.005


def _could_saturate(lim: ConnectorLimits, attempts: list[FarmAttempt]) -> bool:
    """Could the workflows' copies have sent at least twice the allowed rate?

    Each copy is closed-loop: at best one attempt per (farm answer time + client overhead). The
    farm's median answer time for this connector comes from its attempt log."""
    durations = sorted(a.duration for a in attempts if a.duration is not None)
    answer = durations[len(durations) // 2] if durations else 0.0
    best_rate = lim.copies / (answer + CLIENT_OVERHEAD_SECONDS)
    return best_rate >= 2.0 * lim.allowed_rps


# --- DLQ, retries, load -------------------------------------------------------------------------


def bounded_dlq(evidence: JudgeEvidence, thresholds: Thresholds) -> InvariantResult:
    """Writes the AAM deferred to its DLQ (as the workflows were told) stay under the limit."""
    limit = thresholds.max_dlq_entries if thresholds.max_dlq_entries is not None else 99
    writes = [op for op in evidence.completed() if op.kind == "write"]
    deferred = sum(1 for op in writes if op.outcome == "deferred")
    figures = {"deferred": deferred, "limit": limit, "writes": len(writes)}
    if not writes:
        return InvariantResult.unexercised("bounded_dlq", "no write completed", figures)
    detail = f"{deferred} of {len(writes)} writes deferred to the DLQ (limit {limit})"
    return InvariantResult(
        name="bounded_dlq", passed=deferred <= limit, detail=detail, figures=figures
    )


def retry_success_rate(evidence: JudgeEvidence, thresholds: Thresholds) -> InvariantResult:
    """Of the logical operations that met a transient fault on the farm, the share that still
    succeeded (per operation, not per attempt: ten failed retries are one failed operation)."""
    floor = thresholds.min_retry_success_rate or 0.0
    by_op = evidence.attempts_by_op()
    met = ok = 0
    sample: list[str] = []
    for op in evidence.completed():
        attempts = by_op.get(op.op_id, [])
        if not any(a.transient for a in attempts):
            continue
        met += 1
        if op.outcome == "ok":
            ok += 1
        elif len(sample) < SAMPLE:
            sample.append(f"{_op_label(op)}: {_describe_attempts(attempts)}")
    figures: dict[str, Any] = {"operations_faulted": met, "recovered": ok}
    if not met:
        return InvariantResult.unexercised(
            "retry_success_rate", "no operation met a transient fault", figures
        )
    rate = ok / met
    figures["rate"] = round(rate, 4)
    detail = (
        f"{ok} of {met} operations that met a transient fault still succeeded ({rate:.1%}; "
        f"floor {floor:.0%})"
    )
    if sample and rate < floor:
        detail += "; e.g. " + "; ".join(sample[:3])
    return InvariantResult(
        name="retry_success_rate", passed=rate >= floor, detail=detail, figures=figures
    )


def bounded_load_amplification(evidence: JudgeEvidence, limit: float) -> InvariantResult:
    """HTTP attempts the farm received per logical operation stay under ``limit``."""
    attempts = sum(1 for a in evidence.attempts if a.op is not None)
    ops = len(evidence.completed())
    ratio = attempts / ops if ops else 0.0
    figures = {"farm_attempts": attempts, "operations": ops, "ratio": round(ratio, 3)}
    if not ops:
        return InvariantResult.unexercised("bounded_load_amplification", "no operation", figures)
    detail = f"{ratio:.2f} farm attempts per logical operation ({attempts}/{ops}; limit {limit:g})"
    return InvariantResult(
        name="bounded_load_amplification", passed=ratio <= limit, detail=detail, figures=figures
    )
