"""The evidence-based invariants on plain data: each passes on honest evidence, names the breakage
on a realistic bad one, and says ``not_exercised`` when the run gave it nothing to judge."""

from __future__ import annotations

from typing import Any

import pytest

from workflows.evidence import (
    CommittedWrite,
    ConnectorLimits,
    DriftFact,
    FarmAttempt,
    JudgeEvidence,
    Operation,
    RecordTruth,
    RecordVersion,
    TokenFacts,
    canonical_sha256,
)
from workflows.ground_truth import farm_attempts
from workflows.invariants import check_all, unjudgeable
from workflows.scenario import DEFAULT_THRESHOLDS, Mode
from workflows.scorecard import InvariantResult, verdict_of

STORM = DEFAULT_THRESHOLDS[Mode.storm]
T0 = 1_000_000.0
SVC, TEN, CONN = "stripe", "acme", "stripe:acme"


def _truth(records: dict[str, list[tuple[float, dict[str, Any]]]]) -> RecordTruth:
    truth = RecordTruth(SVC, TEN, "invoices")
    for rid, versions in records.items():
        truth.versions[rid] = [
            RecordVersion(i + 1, at, {"id": rid, **fields})
            for i, (at, fields) in enumerate(versions)
        ]
    return truth


BASE = _truth(
    {
        "inv_1": [(0.0, {"amount": 10.5, "currency": "USD"})],
        "inv_2": [(0.0, {"amount": 20.0, "currency": "EUR"})],
        "inv_3": [(0.0, {"amount": 30.0, "currency": "GBP"})],
    }
)


def _read(
    op_id: str, records: list[dict[str, Any]], *, at: float = 1.0, kind: str = "scan", **kw: Any
) -> Operation:
    op = Operation(
        op_id=op_id,
        kind=kind,  # type: ignore[arg-type]
        workflow="high_volume_read",
        connector=CONN,
        service=SVC,
        tenant=TEN,
        resource="invoices",
        started_at=T0 + at,
        finished_at=T0 + at + 0.05,
        outcome=kw.pop("outcome", "ok"),
        records=records,
        **kw,
    )
    return op


def _write(op_id: str, outcome: str = "ok", *, at: float = 1.0, **kw: Any) -> Operation:
    return Operation(
        op_id=op_id,
        kind="write",
        workflow="idempotent_write",
        connector=CONN,
        service=SVC,
        tenant=TEN,
        resource="invoices",
        started_at=T0 + at,
        finished_at=T0 + at + 0.1,
        outcome=outcome,  # type: ignore[arg-type]
        body=kw.pop("body", {"amount": 12.5, "external_id": op_id}),
        lookup_value=op_id,
        **kw,
    )


def _commit(op: Operation, *, at: float | None = None, body: Any = None) -> CommittedWrite:
    return CommittedWrite(
        service=SVC,
        tenant=TEN,
        resource="invoices",
        record_id=f"rec-{op.op_id}",
        lookup_value=op.lookup_value,
        idempotency_key=f"key-{op.op_id}",
        body_sha256=canonical_sha256(body if body is not None else op.body or {}),
        committed_at=T0 + at if at is not None else (op.finished_at or T0) - 0.01,
    )


def _attempt(op: str | None, status: int | None = 200, *, at: float = 1.0, **kw: Any):
    kw.setdefault("duration", 0.05)  # the farm's answer time: one copy sends at most ~18/s
    return FarmAttempt(
        at=T0 + at,
        service=SVC,
        tenant=TEN,
        method=kw.pop("method", "GET"),
        path="/stripe/v1/invoices",
        op=op,
        status=status,
        **kw,
    )


ALL = [{"id": "inv_1", "amount": 10.5, "currency": "USD"},
       {"id": "inv_2", "amount": 20.0, "currency": "EUR"},
       {"id": "inv_3", "amount": 30.0, "currency": "GBP"}]  # fmt: skip


def _evidence(**kw: Any) -> JudgeEvidence:
    w = _write("w-1")
    base: dict[str, Any] = {
        "started_at": T0,
        "finished_at": T0 + 10,
        "operations": [_read("r-1", ALL, full_scan=True), w],
        "attempts": [_attempt("r-1"), _attempt("w-1", 201, method="POST", committed=True)],
        "writes": [_commit(w)],
        "truth": {(SVC, TEN, "invoices"): BASE},
        "tokens": {},
        "drift": [],
        "limits": [ConnectorLimits(CONN, SVC, TEN, allowed_rps=50, burst=25, copies=1)],
    }
    base.update(kw)
    return JudgeEvidence(**base)


def _results(evidence: JudgeEvidence) -> dict[str, InvariantResult]:
    return {r.name: r for r in check_all(evidence, STORM)}


def _failed(evidence: JudgeEvidence) -> set[str]:
    return {name for name, r in _results(evidence).items() if r.status == "fail"}


def test_an_honest_run_passes() -> None:
    results = check_all(_evidence(), STORM)
    assert verdict_of(results) == "PASSED", [r for r in results if r.status == "fail"]


def test_no_completed_operation_cannot_be_judged() -> None:
    hung = _read("r-1", [], outcome="pending")
    assert unjudgeable(_evidence(operations=[hung])) is not None
    assert unjudgeable(_evidence()) is None


def test_failed_operations_below_the_floor_fail_with_the_farms_evidence() -> None:
    ops = [_read(f"r-{i}", ALL[:1], kind="get", outcome="failed") for i in range(5)]
    ops.append(_read("r-ok", ALL[:1], kind="get"))
    attempts = [_attempt("r-0", 503), _attempt("r-0", None, transport="network")]
    result = _results(_evidence(operations=ops, attempts=attempts, writes=[]))["operations_succeed"]
    assert result.status == "fail"
    assert "r-0" in result.detail and "503" in result.detail and "network" in result.detail


def test_a_write_reported_ok_before_it_was_committed_is_a_lost_write() -> None:
    # The AAM parked it in its DLQ and told the workflow "ok"; the replay committed it later.
    w = _write("w-1")
    late = _commit(w, at=8.0)
    assert "no_lost_writes" in _failed(_evidence(operations=[w], writes=[late]))


def test_a_deferred_write_the_dlq_never_delivered_is_lost() -> None:
    w = _write("w-1", "deferred")
    assert "no_lost_writes" in _failed(_evidence(operations=[w], writes=[]))
    # ... and one the replay did commit is fine.
    assert "no_lost_writes" not in _failed(_evidence(operations=[w], writes=[_commit(w, at=9)]))


def test_a_write_reported_failed_is_not_lost() -> None:
    w = _write("w-1", "failed")
    result = _results(_evidence(operations=[w], writes=[]))["no_lost_writes"]
    assert result.status == "not_exercised"


def test_two_commits_of_one_logical_write_are_a_duplicate() -> None:
    w = _write("w-1")
    c1, c2 = _commit(w), _commit(w)
    c2 = CommittedWrite(**{**c2.__dict__, "idempotency_key": "another-key"})
    assert "no_duplicate_writes" in _failed(_evidence(operations=[w], writes=[c1, c2]))


def test_a_committed_body_that_differs_from_the_request_is_not_intact() -> None:
    w = _write("w-1", body={"amount": 12.5, "currency": "USD", "external_id": "w-1"})
    corrupted = _commit(w, body={"amount": 12.5, "currency": "XXX", "external_id": "w-1"})
    assert _failed(_evidence(operations=[w], writes=[corrupted])) == {"writes_intact"}


def test_two_swapped_fields_in_a_record_read_are_wrong() -> None:
    swapped = [{"id": "inv_1", "amount": 10.5, "currency": "EUR"}, *ALL[1:]]
    swapped[1] = {"id": "inv_2", "amount": 20.0, "currency": "USD"}
    assert "reads_correct" in _failed(_evidence(operations=[_read("r-1", swapped)]))


def test_a_missing_required_field_is_wrong_but_an_unasked_one_may_be_absent() -> None:
    partial = [{"id": r["id"], "currency": r["currency"]} for r in ALL]
    ok = _evidence(operations=[_read("r-1", partial)])
    assert "reads_correct" not in _failed(ok)
    required = _evidence(operations=[_read("r-1", partial, require=("amount",))])
    assert "reads_correct" in _failed(required)


def test_a_scan_that_stops_early_or_repeats_is_incomplete() -> None:
    half = _read("r-1", ALL[:1], full_scan=True)
    assert "reads_complete" in _failed(_evidence(operations=[half]))
    twice = _read("r-1", [*ALL, ALL[0]], full_scan=True)
    assert "reads_complete" in _failed(_evidence(operations=[twice]))
    capped = _read("r-1", ALL[:1], full_scan=False)
    assert _results(_evidence(operations=[capped]))["reads_complete"].status == "not_exercised"


def test_records_created_during_a_scan_may_be_missing_but_not_older_ones() -> None:
    truth = _truth({**{r["id"]: [(0.0, {k: v for k, v in r.items() if k != "id"})] for r in ALL}})
    truth.versions["inv_4"] = [RecordVersion(1, T0 + 1.02, {"id": "inv_4", "amount": 1.0})]
    truth.created_at["inv_4"] = T0 + 1.02
    ev = _evidence(
        operations=[_read("r-1", ALL, full_scan=True)], truth={(SVC, TEN, "invoices"): truth}
    )
    assert "reads_complete" not in _failed(ev)


def test_a_cached_read_older_than_the_current_version_is_stale() -> None:
    old, new = {"amount": 10.5, "currency": "USD"}, {"amount": 99.0, "currency": "USD"}
    truth = _truth({"inv_1": [(0.0, old), (T0 + 3, new)]})
    stale = _read("r-2", [{"id": "inv_1", "amount": 10.5, "currency": "USD"}], at=6.0, kind="get")
    fresh = _read("r-3", [{"id": "inv_1", "amount": 99.0, "currency": "USD"}], at=6.0, kind="get")
    key = (SVC, TEN, "invoices")
    failed = _failed(_evidence(operations=[stale], truth={key: truth}))
    assert "reads_fresh" in failed and "reads_correct" not in failed
    assert "reads_fresh" not in _failed(_evidence(operations=[fresh], truth={key: truth}))
    # Read in the same instant as the update: either version is fresh enough.
    racing = _read("r-4", [{"id": "inv_1", "amount": 10.5, "currency": "USD"}], at=2.9, kind="get")
    assert "reads_fresh" not in _failed(_evidence(operations=[racing], truth={key: truth}))


def test_wrong_values_of_a_drifted_field_fail_drift_handled_not_reads_correct() -> None:
    drift = [DriftFact(SVC, "invoices", "amount", "retype", T0 + 0.5)]
    rounded = [{**r, "amount": round(r["amount"])} for r in ALL]  # 10.5 -> 10 (banker's), ...
    failed = _failed(_evidence(operations=[_read("r-1", rounded)], drift=drift))
    assert failed == {"drift_handled"}
    nulled = [{**r, "amount": None} for r in ALL]
    assert "drift_handled" in _failed(_evidence(operations=[_read("r-1", nulled)], drift=drift))
    ok = _results(_evidence(drift=drift))["drift_handled"]
    assert ok.status == "pass" and ok.figures["values_checked"] == 3


def test_drift_not_exercised_without_a_drifted_field_read() -> None:
    assert _results(_evidence())["drift_handled"].status == "not_exercised"


def test_an_operation_that_ends_on_a_401_surfaces_an_auth_failure() -> None:
    op = _read("r-1", [], kind="get", outcome="failed")
    attempts = [_attempt("r-1", 401), _attempt("r-1", 401, at=1.1)]
    tokens = {(SVC, TEN): TokenFacts(issued=1, invalidations=1, answered_401=2)}
    ops = [op, _read("r-2", ALL[:1], kind="get")]
    failed = _failed(_evidence(operations=ops, attempts=attempts, tokens=tokens, writes=[]))
    assert "auth_transparent" in failed


def test_an_operation_ending_on_another_tenants_credential_surfaces_an_auth_failure() -> None:
    # A 403 the farm says was authentication (another tenant's credential), not its rate limit.
    op = _read("r-1", [], kind="get", outcome="failed")
    ops = [op, _read("r-2", ALL[:1], kind="get")]
    wrong = [_attempt("r-1", 403, auth_refused=True)]
    assert "auth_transparent" in _failed(_evidence(operations=ops, attempts=wrong, writes=[]))
    # The same 403 as the service's rate limit (GitHub's dialect) is not an auth failure.
    limited = [_attempt("r-1", 403, rate_limited=True, auth_refused=False)]
    assert "auth_transparent" not in _failed(_evidence(operations=ops, attempts=limited, writes=[]))


def test_the_farm_says_which_403_was_its_rate_limit_and_which_an_auth_refusal() -> None:
    rows: list[dict[str, Any]] = [
        {"ts": T0 + 1, "service": "github", "status": 403, "retry_after": "2",
         "refusal": "rate_limit"},
        {"ts": T0 + 2, "service": "github", "status": 403, "refusal": "auth:wrong_tenant"},
        {"ts": T0 + 3, "service": "github", "status": 403, "fault": "rate_limit_spike",
         "retry_after": "1", "refusal": None},
        {"ts": T0 + 4, "service": "github", "status": 200, "refusal": None},
    ]  # fmt: skip
    limited, wrong, spike, ok = farm_attempts(rows, {"github": 403})
    assert limited.rate_limited and limited.auth_refused is False
    assert wrong.auth_refused and not wrong.rate_limited
    assert not spike.rate_limited and spike.auth_refused is False
    assert not ok.rate_limited and ok.auth_refused is False
    # A row without the column (a farm from before it) has only its status to go by: there the
    # credential of another tenant read as the rate limit.
    old = farm_attempts([{k: v for k, v in r.items() if k != "refusal"} for r in rows],
                        {"github": 403})  # fmt: skip
    assert old[1].rate_limited and old[1].auth_refused is None


def test_a_403_rate_limit_binds_the_whole_connector_to_its_retry_after() -> None:
    # GitHub's dialect: the bucket answers 403 + Retry-After; every operation must wait.
    attempts = [_attempt("r-1", 403, at=1.0, retry_after=2.0, rate_limited=True)]
    attempts += [_attempt(f"r-{i}", 200, at=1.2 + i * 0.1) for i in range(2, 12)]
    assert "rate_limit_etiquette" in _failed(_evidence(attempts=attempts))
    spike = [_attempt("r-1", 403, at=1.0, retry_after=2.0, fault="rate_limit_spike")]
    spike += attempts[1:]
    assert "rate_limit_etiquette" in _failed(_evidence(attempts=spike))


def test_a_403_rate_limit_is_a_transient_fault_a_retry_must_get_past() -> None:
    # GitHub's dialect: an operation whose only fault was a 403 rate limit, given up on.
    given_up = [_read(f"r-{i}", [], kind="get", outcome="failed") for i in range(3)]
    attempts = [_attempt(f"r-{i}", 403, rate_limited=True, auth_refused=False) for i in range(3)]
    attempts += [_attempt("s-1", 403, fault="rate_limit_spike", auth_refused=False)]
    given_up += [_read("s-1", [], kind="get", outcome="failed")]
    result = _results(_evidence(operations=given_up, attempts=attempts, writes=[]))
    retry = result["retry_success_rate"]
    assert retry.status == "fail" and retry.figures["operations_faulted"] == 4, retry


def test_a_token_per_call_breaks_token_etiquette() -> None:
    per_call = {(SVC, TEN): TokenFacts(issued=300, invalidations=2)}
    assert "token_etiquette" in _failed(_evidence(tokens=per_call))
    polite = {(SVC, TEN): TokenFacts(issued=3, invalidations=2)}
    assert "token_etiquette" not in _failed(_evidence(tokens=polite))


def test_attempts_inside_a_retry_after_window_break_rate_limit_etiquette() -> None:
    attempts = [_attempt("r-1", 429, at=1.0, retry_after=2.0, rate_limited=True)]
    attempts += [_attempt(f"r-{i}", 200, at=1.2 + i * 0.1) for i in range(2, 12)]
    assert "rate_limit_etiquette" in _failed(_evidence(attempts=attempts))
    # In flight when the 429 went out (within the grace), and after the window: fine.
    polite = [_attempt("r-1", 429, at=1.0, retry_after=2.0), _attempt("r-2", at=1.05)]
    polite += [_attempt(f"r-{i}", at=3.0 + i * 0.01) for i in range(3, 12)]
    assert "rate_limit_etiquette" not in _failed(_evidence(attempts=polite))


def test_a_503_retry_after_binds_only_its_own_operation() -> None:
    attempts = [_attempt("r-1", 503, at=1.0, retry_after=3.0)]
    attempts += [_attempt(f"r-{i}", at=1.5 + i * 0.01) for i in range(2, 12)]
    assert "rate_limit_etiquette" not in _failed(_evidence(attempts=attempts))
    attempts += [_attempt("r-1", 503, at=1.3), _attempt("r-1", 503, at=1.5, retry_after=3.0)]
    attempts += [_attempt("r-1", 200, at=1.6)]
    assert "rate_limit_etiquette" in _failed(
        _evidence(attempts=sorted(attempts, key=lambda a: a.at))
    )


def test_a_client_far_below_its_allowed_rate_is_under_using_it() -> None:
    # One request every 2 s: each operation held 2 s for a 10 ms answer.
    ops = [_read(f"r-{i}", ALL[:1], kind="get", at=i * 2.0) for i in range(5)]
    for op in ops:
        op.finished_at = op.started_at + 2.0
    slow = [_attempt(f"r-{i}", at=i * 2.0 + 1.99, duration=0.01) for i in range(5)]
    limits = [ConnectorLimits(CONN, SVC, TEN, allowed_rps=25, burst=10, copies=4)]
    failed = _failed(_evidence(operations=ops, attempts=slow, limits=limits, writes=[]))
    assert "rate_limit_etiquette" in failed
    busy = [_attempt(f"r-{i}", at=i * 0.04, duration=0.01) for i in range(250)]
    assert "rate_limit_etiquette" not in _failed(_evidence(attempts=busy, limits=limits))


def test_under_use_is_judged_where_the_headers_never_said_the_quota_was_used_up() -> None:
    # The same 1-request-per-2-s client on a service that sends rate-limit headers.
    ops = [_read(f"r-{i}", ALL[:1], kind="get", at=i * 2.0) for i in range(5)]
    for op in ops:
        op.finished_at = op.started_at + 2.0
    limits = [ConnectorLimits(CONN, SVC, TEN, allowed_rps=25, burst=10, copies=4,
                              advertises_limits=True)]  # fmt: skip

    def run(remaining: list[int | None]) -> set[str]:
        slow = [_attempt(f"r-{i}", at=i * 2.0 + 1.99, duration=0.01, remaining=left)
                for i, left in enumerate(remaining)]  # fmt: skip
        return _failed(_evidence(operations=ops, attempts=slow, limits=limits, writes=[]))

    # The headers said 9 of 10 were left every time: nothing told the client to wait.
    assert "rate_limit_etiquette" in run([9, 9, 9, 9, 9])
    # Told once that nothing was left: waiting for the reset is what the headers asked.
    assert "rate_limit_etiquette" not in run([9, 0, 9, 9, 9])
    # A farm that did not record what its headers said: a header-reading client is not judged.
    assert "rate_limit_etiquette" not in run([None] * 5)


def test_a_busy_client_that_wastes_no_time_is_not_under_using() -> None:
    # A slow (CPU-starved) client: few attempts, but it never sat on an operation.
    ops = [_read(f"r-{i}", ALL[:1], kind="get", at=i * 1.0) for i in range(5)]
    attempts = [_attempt(f"r-{i}", at=i * 1.0 + 0.01, duration=0.03) for i in range(5)]
    limits = [ConnectorLimits(CONN, SVC, TEN, allowed_rps=25, burst=10, copies=4)]
    result = _results(_evidence(operations=ops, attempts=attempts, limits=limits, writes=[]))
    assert result["rate_limit_etiquette"].status == "pass"


def test_goodput_is_not_judged_where_the_farm_was_too_slow_to_saturate() -> None:
    # 4 copies of a closed-loop workflow, the farm taking 0.5 s an answer: 8 attempts/s at most,
    # far from twice 25 rps: whatever the goodput, the client could not have used the limit.
    slow_farm = [_attempt(f"r-{i}", at=i * 0.5, duration=0.5) for i in range(20)]
    limits = [ConnectorLimits(CONN, SVC, TEN, allowed_rps=25, burst=10, copies=4)]
    result = _results(_evidence(attempts=slow_farm, limits=limits))["rate_limit_etiquette"]
    assert result.status == "pass" and "goodput_ratio" not in result.figures["connectors"][CONN]


def test_too_many_bucket_refusals_break_rate_limit_etiquette() -> None:
    attempts = [_attempt(f"r-{i}", 429, at=i * 0.01, rate_limited=True) for i in range(30)]
    attempts += [_attempt(f"r-{i}", at=1 + i * 0.01) for i in range(30, 100)]
    assert "rate_limit_etiquette" in _failed(_evidence(attempts=attempts))


def test_retry_success_is_judged_per_operation_not_per_attempt() -> None:
    # Ten attempts per operation in an outage: every operation met faults and failed.
    ops = [_read(f"r-{i}", [], kind="get", outcome="failed") for i in range(15)]
    attempts = [_attempt(f"r-{i}", 503, at=1 + j * 0.01) for i in range(15) for j in range(10)]
    result = _results(_evidence(operations=ops, attempts=attempts, writes=[]))
    assert result["retry_success_rate"].status == "fail"
    assert result["retry_success_rate"].figures["operations_faulted"] == 15


def test_retries_that_recover_pass_retry_success_rate() -> None:
    ops = [_read(f"r-{i}", ALL[:1], kind="get") for i in range(10)]
    attempts = [_attempt(f"r-{i}", 503, at=1 + i * 0.1) for i in range(10)]
    attempts += [_attempt(f"r-{i}", 200, at=1.05 + i * 0.1) for i in range(10)]
    result = _results(_evidence(operations=ops, attempts=sorted(attempts, key=lambda a: a.at)))
    assert result["retry_success_rate"].status == "pass"


def test_dlq_backlog_over_the_limit_fails_bounded_dlq() -> None:
    writes = [_write(f"w-{i}", "deferred") for i in range(60)]
    commits = [_commit(w, at=9) for w in writes]
    assert "bounded_dlq" in _failed(_evidence(operations=writes, writes=commits))


@pytest.mark.parametrize("limit, fails", [(1.5, True), (5.0, False)])
def test_load_amplification_counts_the_farms_attempts(limit: float, fails: bool) -> None:
    from workflows.invariants import bounded_load_amplification

    ops = [_read(f"r-{i}", ALL[:1], kind="get") for i in range(4)]
    attempts = [_attempt(f"r-{i}", 503) for i in range(4) for _ in range(3)]
    result = bounded_load_amplification(_evidence(operations=ops, attempts=attempts), limit)
    assert (result.status == "fail") is fails


def test_a_capped_scan_that_returns_fewer_records_than_asked_is_incomplete() -> None:
    # "empty on error": a failed page comes back as an ok, empty read.
    empty = _read("r-1", [], max_records=2)
    assert "reads_complete" in _failed(_evidence(operations=[empty]))
    enough = _read("r-1", ALL[:2], max_records=2)
    assert "reads_complete" not in _failed(_evidence(operations=[enough]))
    # The collection held fewer than asked: all of them is complete.
    small = _read("r-1", ALL, max_records=50)
    assert "reads_complete" not in _failed(_evidence(operations=[small]))


def test_a_deferred_write_whose_replay_the_farm_refused_is_still_parked_not_lost() -> None:
    w = _write("w-1", "deferred")
    replay = _attempt("w-1", 503, at=11.0, method="POST")  # after the run (finished at +10)
    result = _results(_evidence(operations=[w], writes=[], attempts=[replay]))["no_lost_writes"]
    assert result.status == "pass" and result.figures["in_dlq"] == 1
