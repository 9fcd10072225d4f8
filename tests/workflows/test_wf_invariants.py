"""The invariant checks on plain data: each one passes on good evidence and names the breakage."""

from __future__ import annotations

from workflows.invariants import ConnectorEvidence, RunEvidence, check_all
from workflows.journal import DriftMismatch, IssuedWrite, RunJournal
from workflows.scenario import DEFAULT_THRESHOLDS, Mode, Thresholds
from workflows.scorecard import verdict_of

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
    ok = _by_name(_evidence(journal, [], drift_workflow_ran=True))["drift_handled"]
    assert ok.passed  # type: ignore[attr-defined]
    journal.mismatch(DriftMismatch("salesforce:acme", "accounts", "7", "account_name", "A", None))
    bad = _by_name(_evidence(journal, [], drift_workflow_ran=True))["drift_handled"]
    assert not bad.passed and "expected 'A'" in bad.detail  # type: ignore[attr-defined]


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
