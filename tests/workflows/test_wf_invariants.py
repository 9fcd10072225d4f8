"""The invariant checks on plain data: each one passes on good evidence and names the breakage."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from workflows.invariants import ConnectorEvidence, RunEvidence, check_all
from workflows.journal import DriftMismatch, IssuedWrite, RunJournal
from workflows.scenario import DEFAULT_THRESHOLDS, Mode, Thresholds
from workflows.scorecard import InvariantResult, verdict_of

STORM = DEFAULT_THRESHOLDS[Mode.storm]


def _journal(*ops: tuple[str, str]) -> RunJournal:
    journal = RunJournal()
    for op_id, outcome in ops:
        journal.issue_write(
            IssuedWrite(
                operation_id=op_id,
                connector="stripe:acme",
                service="stripe",
                tenant="acme",
                resource="invoices",
                lookup_field="external_id",
                outcome=outcome,  # type: ignore[arg-type]
            )
        )
    return journal


def _commit(op_id: str, key: str | None = None) -> dict[str, object]:
    return {
        "service": "stripe",
        "tenant": "acme",
        "resource": "invoices",
        "lookup_value": op_id,
        "idempotency_key": key,
        "outcome": "ok",
    }


def _conn(**farm: int) -> ConnectorEvidence:
    return ConnectorEvidence(
        connector="stripe:acme",
        service="stripe",
        tenant="acme",
        allowed_rps=50,
        burst=25,
        farm=farm,
        aam_calls=farm.get("calls", 0),
    )


def _evidence(journal: RunJournal, writes: list[dict[str, object]], **kw: object) -> RunEvidence:
    base: dict[str, object] = {
        "duration": 10.0,
        "journal": journal,
        "ledger_writes": writes,
        "drift_events": [],
        "connectors": [_conn(calls=100, **{"2xx": 100})],
        "dlq_backlog": 0,
        "dlq_pending_ops": set(),
    }
    base.update(kw)
    return RunEvidence(**base)  # type: ignore[arg-type]


def _by_name(evidence: RunEvidence, thresholds: Thresholds = STORM) -> dict[str, object]:
    return {r.name: r for r in check_all(evidence, thresholds)}


def test_clean_run_passes_every_invariant() -> None:
    journal = _journal(("op-1", "ok"), ("op-2", "failed"))
    results = check_all(_evidence(journal, [_commit("op-1"), _commit("op-2")]), STORM)
    assert verdict_of(results) == "PASSED", [r for r in results if not r.passed]


def test_a_failed_write_that_is_neither_committed_nor_dead_lettered_is_lost() -> None:
    journal = _journal(("op-1", "ok"), ("op-2", "failed"), ("op-3", "failed"))
    evidence = _evidence(journal, [_commit("op-1")], dlq_pending_ops={"op-3"})
    result = _by_name(evidence)["no_lost_writes"]
    assert not result.passed  # type: ignore[attr-defined]
    assert "op-2" in result.detail and "op-3" not in result.detail  # type: ignore[attr-defined]


def test_commit_then_fail_counts_as_committed_not_lost() -> None:
    # The client saw a failure, but the farm's ledger says it committed: not lost.
    journal = _journal(("op-1", "failed"))
    assert _by_name(_evidence(journal, [_commit("op-1")]))["no_lost_writes"].passed  # type: ignore[attr-defined]


def test_cancelled_writes_are_not_judged() -> None:
    journal = _journal(("op-1", "cancelled"))
    result = _by_name(_evidence(journal, []))["no_lost_writes"]
    assert result.passed and result.figures["unresolved"] == 1  # type: ignore[attr-defined]


def test_two_commits_of_one_operation_are_a_duplicate_even_without_a_key() -> None:
    journal = _journal(("op-1", "ok"))
    result = _by_name(_evidence(journal, [_commit("op-1"), _commit("op-1")]))["no_duplicate_writes"]
    assert not result.passed  # type: ignore[attr-defined]
    assert result.figures["extra_effects"] == 1  # type: ignore[attr-defined]


def test_surfaced_auth_expired_breaks_auth_transparency() -> None:
    journal = _journal()
    journal.surfaced[("high_volume_read", "salesforce:acme", "auth_expired")] += 3
    result = _by_name(_evidence(journal, []))["auth_transparent"]
    assert not result.passed and "3 auth_expired" in result.detail  # type: ignore[attr-defined]


def test_bucket_refusals_break_etiquette_but_injected_spikes_do_not() -> None:
    hammering = _conn(calls=1000, **{"2xx": 100, "429": 900})
    assert not _by_name(_evidence(_journal(), [], connectors=[hammering]))[
        "rate_limit_etiquette"
    ].passed  # type: ignore[attr-defined]
    spiky = _conn(calls=100, **{"2xx": 70, "429": 30})
    spiky.faults = {"rate_limit_spike": 30}
    assert _by_name(_evidence(_journal(), [], connectors=[spiky]))["rate_limit_etiquette"].passed  # type: ignore[attr-defined]


def test_goodput_ratio_is_measured_against_what_the_connector_was_allowed_to_send() -> None:
    # 10 s at 50 rps + 25 burst = 525 entitled; 100 of 100 attempts succeeded -> ratio 1.0
    assert _by_name(_evidence(_journal(), []))["rate_limit_etiquette"].passed  # type: ignore[attr-defined]
    starved = _conn(calls=2000, **{"2xx": 50})
    result = _by_name(_evidence(_journal(), [], connectors=[starved]))["rate_limit_etiquette"]
    assert not result.passed  # type: ignore[attr-defined]


def test_a_wrong_value_breaks_drift_handled_and_a_refusal_does_not() -> None:
    journal = _journal()
    journal.drift_values_checked = 10
    journal.drift_refusals = 1
    fired = {"drift_workflow_ran": True, "drift_events": [DRIFT_EVENT]}
    ok = _by_name(_evidence(journal, [], **fired))["drift_handled"]
    assert ok.status == "pass" and ok.passed  # type: ignore[attr-defined]
    journal.mismatch(DriftMismatch("salesforce:acme", "accounts", "7", "account_name", "A", None))
    bad = _by_name(_evidence(journal, [], **fired))["drift_handled"]
    assert not bad.passed and "expected 'A'" in bad.detail  # type: ignore[attr-defined]
    assert bad.status == "fail"  # type: ignore[attr-defined]


DRIFT_EVENT = {"service": "salesforce", "version": 2, "action": "rename", "at_call": 150}


def _status(evidence: RunEvidence, name: str, thresholds: Thresholds = STORM) -> str:
    return _by_name(evidence, thresholds)[name].status  # type: ignore[attr-defined]


def test_drift_handled_is_not_exercised_until_drift_fires_where_the_workflow_reads() -> None:
    journal = _journal()
    journal.drift_values_checked = 500
    ran = {"drift_workflow_ran": True, "drift_services": {"salesforce"}}
    assert _status(_evidence(journal, []), "drift_handled") == "not_exercised"  # no workflow
    result = _by_name(_evidence(journal, [], **ran))["drift_handled"]
    assert result.status == "not_exercised" and result.passed  # type: ignore[attr-defined]
    assert result.detail.startswith("not exercised: no drift fired")  # type: ignore[attr-defined]
    # Drift on a service the workflow never read proves nothing about it either.
    elsewhere = {**DRIFT_EVENT, "service": "github"}
    assert _status(_evidence(journal, [], drift_events=[elsewhere], **ran), "drift_handled") == (
        "not_exercised"
    )
    assert _status(_evidence(journal, [], drift_events=[DRIFT_EVENT], **ran), "drift_handled") == (
        "pass"
    )
    # A wrong value fails even when no drift fired: wrong data is wrong data.
    journal.mismatch(DriftMismatch("salesforce:acme", "accounts", "7", "account_name", "A", None))
    assert _status(_evidence(journal, [], **ran), "drift_handled") == "fail"


def test_write_invariants_are_not_exercised_without_writes() -> None:
    evidence = _evidence(_journal(), [])
    for name in ("no_lost_writes", "no_duplicate_writes", "bounded_dlq"):
        assert _status(evidence, name) == "not_exercised", name
    # Only in-flight writes: still nothing to judge.
    assert _status(_evidence(_journal(("op-1", "pending")), []), "no_lost_writes") == (
        "not_exercised"
    )
    written = _evidence(_journal(("op-1", "ok")), [_commit("op-1")])
    for name in ("no_lost_writes", "no_duplicate_writes", "bounded_dlq"):
        assert _status(written, name) == "pass", name
    # A backlog without journal writes is still measured (and can fail).
    assert _status(_evidence(_journal(), [], dlq_backlog=10_000), "bounded_dlq") == "fail"


def test_retry_success_rate_without_transient_faults_is_not_exercised_unless_errors_surfaced() -> (
    None
):
    clean = _evidence(_journal(), [])  # 100 calls, all 2xx
    assert _status(clean, "retry_success_rate") == "not_exercised"
    journal = _journal()
    journal.surfaced[("high_volume_read", "stripe:acme", "timeout")] = 3
    result = _by_name(_evidence(journal, []))["retry_success_rate"]
    assert result.status == "fail" and not result.passed  # type: ignore[attr-defined]


def test_calls_auth_and_amplification_not_exercised_without_traffic() -> None:
    idle = _evidence(_journal(), [], connectors=[_conn()])
    assert _status(idle, "rate_limit_etiquette") == "not_exercised"
    assert _status(idle, "auth_transparent") == "not_exercised"
    limited = STORM.model_copy(update={"max_load_amplification": 2.0})
    assert _status(idle, "bounded_load_amplification", limited) == "not_exercised"
    # One token per connector and no 401: nothing expired or rotated, nothing proven.
    first_token = _evidence(_journal(), [], connectors=[_conn(calls=10, tokens_issued=1)])
    assert _status(first_token, "auth_transparent") == "not_exercised"
    rotated = _evidence(_journal(), [], connectors=[_conn(calls=10, tokens_issued=2)])
    assert _status(rotated, "auth_transparent") == "pass"
    refused = _evidence(_journal(), [], connectors=[_conn(calls=10, tokens_issued=1, **{"401": 1})])
    assert _status(refused, "auth_transparent") == "pass"
    journal = _journal()
    journal.surfaced[("high_volume_read", "stripe:acme", "auth_expired")] = 1
    assert _status(_evidence(journal, [], connectors=[_conn(calls=10)]), "auth_transparent") == (
        "fail"
    )


def test_the_verdict_passes_with_unexercised_invariants_but_never_with_a_failure() -> None:
    results = check_all(_evidence(_journal(), []), STORM)
    statuses = {r.name: r.status for r in results}
    assert "not_exercised" in statuses.values() and "fail" not in statuses.values()
    assert verdict_of(results) == "PASSED"
    journal = _journal()
    journal.surfaced[("high_volume_read", "stripe:acme", "unclassified")] = 1
    assert verdict_of(check_all(_evidence(journal, []), STORM)) == "FAILED"
    # Nothing exercised at all proves nothing: FAILED.
    only_idle = [
        InvariantResult.unexercised("no_lost_writes", "no writes issued"),
        InvariantResult.unexercised("drift_handled", "no drift fired"),
    ]
    assert verdict_of(only_idle) == "FAILED"


def test_status_and_passed_agree_and_old_scorecards_still_load() -> None:
    assert InvariantResult(name="x", passed=True, detail="d").status == "pass"
    assert InvariantResult(name="x", passed=False, detail="d").status == "fail"
    assert InvariantResult(name="x", status="not_exercised", detail="d").passed is True
    assert InvariantResult(name="x", status="fail", detail="d").passed is False
    with pytest.raises(ValidationError):
        InvariantResult(name="x", passed=True, status="fail", detail="d")
    with pytest.raises(ValidationError):
        InvariantResult(name="x", detail="d")
    dumped = InvariantResult.unexercised("x", "why").model_dump(mode="json")
    assert dumped["status"] == "not_exercised" and dumped["passed"] is True
    assert dumped["detail"] == "not exercised: why"


def test_dlq_backlog_over_the_mode_limit_fails() -> None:
    limit = STORM.max_dlq_entries
    assert limit is not None
    result = _by_name(_evidence(_journal(), [], dlq_backlog=limit + 1))["bounded_dlq"]
    assert not result.passed  # type: ignore[attr-defined]


def test_retry_success_rate_is_the_share_of_injected_faults_absorbed() -> None:
    conn = _conn(calls=200, **{"2xx": 100, "5xx": 100})
    journal = _journal()
    journal.surfaced[("high_volume_read", "stripe:acme", "server_error")] = 5
    good = _by_name(_evidence(journal, [], connectors=[conn]))["retry_success_rate"]
    assert good.passed and good.figures["rate"] == 0.95  # type: ignore[attr-defined]
    journal.surfaced[("high_volume_read", "stripe:acme", "server_error")] = 50
    bad = _by_name(_evidence(journal, [], connectors=[conn]))["retry_success_rate"]
    assert not bad.passed  # type: ignore[attr-defined]


def test_load_amplification_is_checked_only_when_a_limit_is_set() -> None:
    conn = _conn(calls=300, **{"5xx": 300})
    conn.aam_calls = 100
    evidence = _evidence(_journal(), [], connectors=[conn])
    assert "bounded_load_amplification" not in _by_name(evidence)
    limited = STORM.model_copy(update={"max_load_amplification": 2.0})
    result = _by_name(evidence, limited)["bounded_load_amplification"]
    assert not result.passed and result.figures["ratio"] == 3.0  # type: ignore[attr-defined]


def test_no_invariants_is_never_a_pass() -> None:
    assert verdict_of([]) == "FAILED"


def test_an_exception_outside_the_error_tree_breaks_errors_classified() -> None:
    journal = _journal()
    assert _by_name(_evidence(journal, []))["errors_classified"].passed  # type: ignore[attr-defined]
    journal.surfaced[("high_volume_read", "stripe:acme", "unclassified")] += 1
    assert not _by_name(_evidence(journal, []))["errors_classified"].passed  # type: ignore[attr-defined]


def test_deferred_writes_count_as_parked_only_as_far_as_the_replay_report_covers_them() -> None:
    from workflows.runner import parked_operations

    deferred = ["op-1", "op-2", "op-3", "op-4"]
    committed = {"op-2"}  # replayed into the ledger
    # The AAM says two entries still wait: two of the three uncommitted ones are parked...
    assert parked_operations(deferred, committed, 2) == {"op-1", "op-3"}
    # ... and an AAM that claims more than it deferred cannot park writes it never reported.
    assert parked_operations(deferred, committed, 10) == {"op-1", "op-3", "op-4"}
    assert parked_operations(deferred, committed, 0) == set()
