"""Reading children into status: farm readiness, and a run's phase and scorecard."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gauntlet_operator.observe import deployment_readiness, parse_summary, run_state
from gauntlet_operator.status import ScenarioPhase

SUMMARY = {
    "verdict": "PASSED",
    "profile": "full",
    "mode": "hell",
    "seed": 42,
    "duration_seconds": 60.1,
    "invariants": {"no_lost_writes": "pass", "bounded_dlq": "pass"},
    "goodput_rps": 12.5,
    "attempts": 900,
    "success_rate": 0.91,
    "dlq_entries": 4,
    "p99_seconds": 1.2,
}


def deployment(generation: int, observed: int | None, ready: int, wanted: int = 2) -> Any:
    status: dict[str, Any] = {"readyReplicas": ready, "updatedReplicas": ready}
    if observed is not None:
        status["observedGeneration"] = observed
    return {"metadata": {"generation": generation}, "spec": {"replicas": wanted}, "status": status}


def test_farm_is_ready_only_when_the_latest_spec_runs_on_every_replica() -> None:
    assert deployment_readiness(deployment(3, 3, 2)).ready
    not_all = deployment_readiness(deployment(3, 3, 1))
    assert not not_all.ready and not_all.message == "1/2 farm pods ready"
    stale = deployment_readiness(deployment(4, 3, 2))
    assert not stale.ready and stale.reason == "RollingOut"
    assert not deployment_readiness(deployment(1, None, 0)).ready
    assert deployment_readiness(deployment(2, 2, 0, wanted=0)).reason == "ScaledToZero"


def job(condition: str | None = None, active: int = 0) -> dict[str, Any]:
    status: dict[str, Any] = {"startTime": "2026-01-01T00:00:00Z", "active": active}
    if condition:
        status["conditions"] = [{"type": condition, "status": "True", "reason": "X"}]
        status["completionTime"] = "2026-01-01T00:01:00Z"
    return {"status": status}


def pod(exit_code: int, message: str, stamp: str = "2026-01-01T00:00:01Z") -> dict[str, Any]:
    terminated = {"exitCode": exit_code, "message": message, "reason": "Error"}
    return {
        "metadata": {"creationTimestamp": stamp},
        "status": {"containerStatuses": [{"name": "runner", "state": {"terminated": terminated}}]},
    }


def test_a_job_without_pods_is_pending_and_an_active_one_running() -> None:
    assert run_state(job(), []).phase is ScenarioPhase.Pending
    assert run_state(job(active=1), []).phase is ScenarioPhase.Running


def test_exit_zero_with_a_passed_summary_is_passed_with_the_scorecard() -> None:
    state = run_state(job("Complete"), [pod(0, json.dumps(SUMMARY))])
    assert state.phase is ScenarioPhase.Passed
    assert state.scorecard is not None
    assert state.scorecard.invariants == SUMMARY["invariants"]
    assert state.scorecard.goodputRps == 12.5 and state.scorecard.dlqEntries == 4
    assert state.completion_time == "2026-01-01T00:01:00Z"


def test_unexercised_invariants_reach_the_status_as_such() -> None:
    summary = {
        **SUMMARY,
        "invariants": {"no_lost_writes": "pass", "bounded_dlq": "not_exercised"},
        "not_exercised": 1,
    }
    state = run_state(job("Complete"), [pod(0, json.dumps(summary))])
    assert state.scorecard is not None
    assert state.scorecard.invariants == summary["invariants"]
    assert state.scorecard.notExercised == 1


def test_an_error_verdict_is_an_error_phase_with_the_runners_reason() -> None:
    summary = {**SUMMARY, "verdict": "ERROR", "error": "the farm restarted during the run"}
    state = run_state(job("Failed"), [pod(2, json.dumps(summary))])
    assert state.phase is ScenarioPhase.Error
    assert state.reason == "VerdictError"
    assert "farm restarted" in state.message


def test_exit_one_with_a_failed_summary_is_failed_naming_the_broken_invariants() -> None:
    statuses = {"a": "pass", "z": "fail", "b": "fail", "c": "not_exercised"}
    failed = {**SUMMARY, "verdict": "FAILED", "invariants": statuses}
    state = run_state(job("Failed"), [pod(1, json.dumps(failed))])
    assert state.phase is ScenarioPhase.Failed
    assert state.message == "FAILED: b, z"


@pytest.mark.parametrize(
    ("exit_code", "message", "reason", "fragment"),
    [
        (2, "error unreachable farm http://synsvc-x:8001", "RunnerConfigError", "unreachable"),
        (137, "", "Error", "runner exit 137"),
        (1, json.dumps(SUMMARY), "VerdictMismatch", "disagrees with verdict PASSED"),
        (1, "Traceback (most recent call last): boom", "Error", "boom"),
    ],
)
def test_anything_else_that_ends_the_job_is_an_error_with_its_reason(
    exit_code: int, message: str, reason: str, fragment: str
) -> None:
    state = run_state(job("Failed"), [pod(exit_code, message)])
    assert state.phase is ScenarioPhase.Error
    assert state.reason == reason and fragment in state.message


def test_a_job_that_failed_before_any_pod_ran_is_an_error_with_the_job_reason() -> None:
    deadline = {
        "status": {
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "DeadlineExceeded",
                    "message": "Job was active longer than specified deadline",
                }
            ]
        }
    }
    state = run_state(deadline, [])
    assert state.phase is ScenarioPhase.Error and state.reason == "DeadlineExceeded"


def test_the_newest_pod_decides() -> None:
    pods = [
        pod(2, "old", "2026-01-01T00:00:01Z"),
        pod(0, json.dumps(SUMMARY), "2026-01-01T00:00:09Z"),
    ]
    assert run_state(job("Complete"), pods).phase is ScenarioPhase.Passed


@pytest.mark.parametrize("text", [None, "", "not json", "[1, 2]", '{"verdict": "MAYBE"}'])
def test_summary_parsing_rejects_what_is_not_a_summary(text: str | None) -> None:
    assert parse_summary(text) is None
