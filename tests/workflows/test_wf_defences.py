"""The Gauntlet catches a broken AAM: naive fails a storm, the full AAM passes it, and switching
off any single defence breaks the invariant that defence exists for.

Real farm on 127.0.0.1:0, real AAM, short durations. Each test runs the full profile as the
control (it must hold the invariant) and the weakened profile (it must break it).
"""

from __future__ import annotations

import pytest
from wf_helpers import preseeded, scenario, with_changes

pytestmark = pytest.mark.slow

STANDARD_WORKFLOWS = [
    {"name": "high_volume_read", "concurrency": 2},
    {"name": "idempotent_write", "concurrency": 2},
    {"name": "drift_sensitive_read", "concurrency": 1, "services": ["salesforce"]},
]


def _failed(card) -> set[str]:  # type: ignore[no-untyped-def]
    return set(card.failed_invariants())


async def test_storm_naive_fails_and_full_passes(run_on_farm) -> None:  # type: ignore[no-untyped-def]
    specs = preseeded("stripe", "salesforce", "netsuite", "github")
    spec = scenario(
        mode="storm",
        # github under storm: 5 rps, a bucket of 2, while its docs say 10: the AAM learns that
        # from the wire in the first seconds; 10 s keeps learning from being the whole run.
        duration_seconds=10,
        services=[s.id for s in specs],
        tenants=["acme"],
        workflows=STANDARD_WORKFLOWS,
    )
    naive, full = await run_on_farm(specs, spec, ["naive", "full"])
    assert naive.verdict == "FAILED"
    # naive has no backoff, no adaptation and no DLQ: several invariants break at once
    assert {"rate_limit_etiquette", "retry_success_rate"} <= _failed(naive)
    assert full.verdict == "PASSED", full.invariants
    assert full.totals()["successes"] > 0
    assert full.invariant("no_lost_writes").figures["promised"] > 0


async def test_without_token_refresh_auth_is_not_transparent(run_on_farm) -> None:  # type: ignore[no-untyped-def]
    # salesforce tokens live 2 s here; hubspot rotates its token every 100 calls
    sf = preseeded("salesforce")[0]
    sf = with_changes(sf, auth={"type": "oauth2_client_credentials", "token_ttl_seconds": 2})
    specs = [sf, *preseeded("hubspot")]
    spec = scenario(
        mode="calm",
        duration_seconds=5,
        services=["salesforce", "hubspot"],
        tenants=["acme"],
        workflows=[{"name": "high_volume_read", "concurrency": 2}],
    )
    full, broken = await run_on_farm(specs, spec, ["full", "full-token_refresh"])
    assert full.invariant("auth_transparent").passed, full.invariant("auth_transparent")
    assert full.invariant("auth_transparent").figures["tokens_issued"] >= 3
    assert "auth_transparent" in _failed(broken)


async def test_without_rate_adaptation_etiquette_breaks(run_on_farm) -> None:  # type: ignore[no-untyped-def]
    specs = preseeded("github")
    spec = scenario(
        mode="storm",
        duration_seconds=5,
        services=["github"],
        workflows=[{"name": "high_volume_read", "concurrency": 4}],
    )
    full, broken = await run_on_farm(specs, spec, ["full", "full-rate_adaptation"])
    assert full.invariant("rate_limit_etiquette").passed, full.invariant("rate_limit_etiquette")
    assert "rate_limit_etiquette" in _failed(broken)


async def test_without_retries_transient_faults_reach_workflows(run_on_farm) -> None:  # type: ignore[no-untyped-def]
    specs = preseeded("stripe")
    spec = scenario(
        mode="storm",
        duration_seconds=4,
        services=["stripe"],
        workflows=[{"name": "high_volume_read", "concurrency": 2}],
    )
    full, broken = await run_on_farm(specs, spec, ["full", "full-retries"])
    assert full.invariant("retry_success_rate").passed, full.invariant("retry_success_rate")
    assert "retry_success_rate" in _failed(broken)


WRITES_IN_HELL = {
    "mode": "hell",
    "duration_seconds": 5,
    "services": ["stripe", "netsuite", "supabase"],
    "tenants": ["acme"],
    "workflows": [{"name": "idempotent_write", "concurrency": 4}],
}


def _outage(spec_id: str = "stripe"):  # type: ignore[no-untyped-def]
    """A preseeded service in a total outage: every data request answers 5xx."""
    return with_changes(
        preseeded(spec_id)[0],
        # nothing commits: an outage, not commit-then-fail
        error_profile={"preset": "none", "server_error_rate": 1.0, "commit_then_fail_share": 0},
        network_profile={},
        tenants=[{"id": "acme"}],
    )


#: In a total outage nothing can be retried away or paced into success: those floors are off.
OUTAGE_THRESHOLDS = {
    "min_operation_success": 0,
    "min_retry_success_rate": 0,
    "min_goodput_ratio": 0,
}


async def test_with_dead_letter_failed_writes_are_parked_and_replayed(run_on_farm) -> None:  # type: ignore[no-untyped-def]
    # Writes to a service in an outage fail for good (hell's retried writes almost all succeed,
    # so it cannot show this reliably). With the DLQ they are deferred and the replay after the
    # run reaches the farm (refused again: the outage goes on), so they are parked, not lost.
    # Without it they are reported failed: honest failures, not lost writes.
    spec = scenario(
        mode="calm",
        duration_seconds=5,
        services=["stripe"],
        workflows=[{"name": "idempotent_write", "concurrency": 4}],
        thresholds={**OUTAGE_THRESHOLDS, "max_dlq_entries": 100_000},
    )
    full, broken = await run_on_farm([_outage()], spec, ["full", "full-dead_letter"])
    lost = full.invariant("no_lost_writes")
    assert lost.status == "pass" and lost.figures["in_dlq"] > 0, lost
    assert lost.figures["lost"] == 0
    dropped = broken.invariant("no_lost_writes")
    assert dropped.status == "not_exercised", dropped  # nothing was promised
    assert broken.invariant("operations_succeed").figures["deferred"] == 0
    assert broken.invariant("operations_succeed").figures["failed"] > 0


async def test_without_idempotency_dlq_replay_duplicates_writes(run_on_farm) -> None:  # type: ignore[no-untyped-def]
    # Commit-then-fail writes land in the DLQ; replaying them without a key (and without the
    # lookup-before-resend) commits them a second time.
    specs = preseeded("stripe", "netsuite", "supabase")
    full, broken = await run_on_farm(
        specs, scenario(**WRITES_IN_HELL), ["full", "full-idempotency"]
    )
    assert full.invariant("no_duplicate_writes").passed, full.invariant("no_duplicate_writes")
    assert "no_duplicate_writes" in _failed(broken)
    assert broken.invariant("no_duplicate_writes").figures["extra_effects"] > 0


async def test_without_drift_mapping_wrong_values_are_returned(run_on_farm) -> None:  # type: ignore[no-untyped-def]
    sf = preseeded("salesforce")[0]
    sf = with_changes(
        sf,
        drift_schedule=[
            {
                "after_calls": 20,
                "action": "rename",
                "resource": "accounts",
                "field": "account_name",
                "to": "name",
            }
        ],
    )
    spec = scenario(
        mode="calm",
        duration_seconds=4,
        services=["salesforce"],
        tenants=["acme"],
        workflows=[{"name": "drift_sensitive_read", "concurrency": 2}],
    )
    full, broken = await run_on_farm([sf], spec, ["full", "full-drift_mapping"])
    handled = full.invariant("drift_handled")
    assert handled.passed, handled
    assert handled.figures["values_checked"] > 0
    assert "drift_handled" in _failed(broken)
    assert broken.invariant("drift_handled").figures["wrong_values"] > 0


async def test_without_circuit_breaker_an_outage_is_hammered(run_on_farm) -> None:  # type: ignore[no-untyped-def]
    # A total outage (every answer a 5xx) cannot be retried away, so the retry and goodput
    # floors are off; what a client still controls is the load it adds to a dying service.
    outage = _outage()
    # 8 copies: the breaker needs a window of attempts (40) before it may open.
    spec = scenario(
        mode="calm",
        duration_seconds=6,
        services=["stripe"],
        workflows=[{"name": "high_volume_read", "concurrency": 8}],
        thresholds={**OUTAGE_THRESHOLDS, "max_load_amplification": 0.5},
    )
    full, broken = await run_on_farm([outage], spec, ["full", "full-circuit_breaker"])
    amplification = full.invariant("bounded_load_amplification")
    assert amplification.passed, amplification
    assert full.verdict == "PASSED", full.invariants
    assert "bounded_load_amplification" in _failed(broken)


async def test_a_removed_field_is_refused_by_the_full_aam_and_invented_by_naive(
    run_on_farm,
) -> None:  # type: ignore[no-untyped-def]
    github = with_changes(
        preseeded("github")[0],
        drift_schedule=[
            {"after_calls": 10, "action": "remove", "resource": "repos", "field": "description"}
        ],
        rate_limit={"max_rps": 200, "burst": 100},
    )
    spec = scenario(
        mode="calm",
        duration_seconds=3,
        services=["github"],
        workflows=[{"name": "drift_sensitive_read", "concurrency": 2}],
    )
    full, naive = await run_on_farm([github], spec, ["full", "naive"])
    handled = full.invariant("drift_handled")
    # a removed field cannot be mapped: the AAM refuses and the workflow stops, no wrong data
    assert handled.status != "fail", handled
    assert full.workflows[0].errors.get("schema_drift", 0) >= 1, full.workflows
    assert "drift_handled" in _failed(naive)
