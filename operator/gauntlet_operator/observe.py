"""Read children's state into custom resource status. Pure functions: objects in, facts out.

- A farm Deployment tells whether its SyntheticService is ready.
- A runner Job and its pod tell a scenario's phase; the pod's termination message is the
  runner's JSON summary (workflows/README.md), copied into ``status.scorecard``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from gauntlet_operator.status import ScenarioPhase, Scorecard, Verdict

Obj = dict[str, Any]

#: termination-log key -> status key (workflows/README.md lists the former).
SUMMARY_KEYS = {
    "verdict": "verdict",
    "profile": "profile",
    "mode": "mode",
    "seed": "seed",
    "duration_seconds": "durationSeconds",
    "error": "error",
    "invariants": "invariants",
    "failed": "failed",
    "not_exercised": "notExercised",
    "goodput_rps": "goodputRps",
    "attempts": "attempts",
    "success_rate": "successRate",
    "dlq_entries": "dlqEntries",
    "p99_seconds": "p99Seconds",
}

# Runner exit codes (workflows/README.md).
EXIT_PASSED, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@dataclass(frozen=True)
class Readiness:
    """Whether a farm Deployment serves its current spec on every wanted replica."""

    ready: bool
    replicas: int
    ready_replicas: int
    reason: str
    message: str


def deployment_readiness(deployment: Obj) -> Readiness:
    """Ready when the controller has seen the latest spec and every replica is updated and ready."""
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    meta = deployment.get("metadata") or {}
    wanted = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    observed = status.get("observedGeneration")
    generation = meta.get("generation")
    if generation is not None and (observed is None or observed < generation):
        return Readiness(False, wanted, ready, "RollingOut", "the new spec is not rolled out yet")
    if wanted == 0:
        return Readiness(True, 0, 0, "ScaledToZero", "replicas is 0: no farm pod runs")
    if updated >= wanted and ready >= wanted:
        return Readiness(True, wanted, ready, "FarmReady", f"{ready}/{wanted} farm pods ready")
    return Readiness(False, wanted, ready, "RollingOut", f"{ready}/{wanted} farm pods ready")


@dataclass(frozen=True)
class RunState:
    """What a scenario's status should say about its run."""

    phase: ScenarioPhase
    reason: str
    message: str
    scorecard: Scorecard | None = None
    start_time: str | None = None
    completion_time: str | None = None
    problems: list[str] = field(default_factory=list)


def parse_summary(message: str | None) -> Scorecard | None:
    """The runner's termination-log JSON as a :class:`Scorecard`; ``None`` if it is not one."""
    if not message:
        return None
    try:
        data = json.loads(message)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    mapped = {SUMMARY_KEYS[k]: v for k, v in data.items() if k in SUMMARY_KEYS}
    try:
        return Scorecard.model_validate(mapped)
    except ValidationError:
        return None


def _condition(job: Obj, type_: str) -> Obj | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_ and cond.get("status") == "True":
            return dict(cond)
    return None


def runner_termination(pods: list[Obj]) -> Obj | None:
    """The ``terminated`` state of the runner container of the newest finished pod."""
    finished: list[tuple[str, Obj]] = []
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if status.get("name") != "runner":
                continue
            terminated = (status.get("state") or {}).get("terminated")
            if terminated:
                stamp = pod.get("metadata", {}).get("creationTimestamp") or ""
                finished.append((stamp, terminated))
    return max(finished, key=lambda pair: pair[0])[1] if finished else None


def _tail(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else "..." + text[-limit:]


def run_state(job: Obj, pods: list[Obj]) -> RunState:
    """Scenario phase from its Job and the Job's pods.

    Passed/Failed only when the runner's exit code and its summary agree; anything else that
    ends the Job (exit 2, a crash, a deadline, an eviction) is Error, with the reason.
    """
    status = job.get("status") or {}
    start = status.get("startTime")
    complete = _condition(job, "Complete") or _condition(job, "SuccessCriteriaMet")
    failed = _condition(job, "Failed") or _condition(job, "FailureTarget")
    if not complete and not failed:
        if int(status.get("active") or 0) > 0:
            return RunState(
                ScenarioPhase.Running, "JobRunning", "the runner is running", None, start
            )
        return RunState(
            ScenarioPhase.Pending, "JobPending", "waiting for the runner pod", None, start
        )

    done = status.get("completionTime") or (complete or failed or {}).get("lastTransitionTime")
    terminated = runner_termination(pods)
    if terminated is None:
        why = (failed or {}).get("reason") or "NoPod"
        text = (failed or {}).get("message") or "the runner pod is gone; no summary to read"
        return RunState(ScenarioPhase.Error, why, text, None, start, done)

    exit_code = terminated.get("exitCode")
    message = terminated.get("message") or ""
    summary = parse_summary(message)
    if summary is not None:
        if exit_code == EXIT_PASSED and summary.verdict is Verdict.PASSED:
            return RunState(ScenarioPhase.Passed, "VerdictPassed", "PASSED", summary, start, done)
        if exit_code == EXIT_FAILED and summary.verdict is Verdict.FAILED:
            broken = summary.failed or sorted(
                k for k, status in summary.invariants.items() if status == "fail"
            )
            text = "FAILED: " + (", ".join(broken) if broken else "see the scorecard")
            return RunState(ScenarioPhase.Failed, "VerdictFailed", text, summary, start, done)
    if exit_code == EXIT_USAGE and summary is not None and summary.verdict is Verdict.ERROR:
        text = "ERROR: " + (summary.error or "the run could not be judged")
        return RunState(ScenarioPhase.Error, "VerdictError", text, summary, start, done)
    if exit_code == EXIT_USAGE:
        reason, text = "RunnerConfigError", "runner exit 2 (usage or config error)"
    elif summary is not None:
        reason = "VerdictMismatch"
        text = f"runner exit {exit_code} disagrees with verdict {summary.verdict.value}"
    else:
        reason = terminated.get("reason") or "RunnerError"
        text = f"runner exit {exit_code}"
    if message and summary is None:
        text += f": {_tail(message)}"
    return RunState(ScenarioPhase.Error, reason, text, summary, start, done)
