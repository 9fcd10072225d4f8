"""The scorecard: what one scenario run measured, which invariants held, and the verdict.

One JSON document per run (written to a file and to the run history). The shape follows
DESIGN.md "Scorecard and verdict"; :func:`termination_summary` is the compact form (≤ 4 KiB) the
Kubernetes Job writes to its termination log.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: ``ERROR``: the run could not be judged (nothing completed, the farm could not vouch for its
#: evidence, the AAM under test broke the contract); exit code 2, never PASSED or FAILED.
Verdict = Literal["PASSED", "FAILED", "ERROR"]
#: ``not_exercised``: the run never produced the situation the invariant is about (no drift fired,
#: no writes issued, no transient faults), so it proves nothing either way. It does not fail the
#: verdict, but it is never shown as a pass.
InvariantStatus = Literal["pass", "fail", "not_exercised"]
STATUSES: tuple[InvariantStatus, ...] = ("pass", "fail", "not_exercised")
TERMINATION_LOG_LIMIT = 4096


class ConnectorFigures(BaseModel):
    """Per-connector figures: the AAM's own counters next to the farm's ground truth."""

    model_config = ConfigDict(extra="forbid")

    connector: str
    service: str
    tenant: str
    calls: int = 0
    attempts: int = 0
    successes: int = 0
    goodput_rps: float = 0.0
    errors: dict[str, int] = Field(default_factory=dict, description="surfaced failures by class")
    retries: int = 0
    token_refreshes: int = 0
    dlq_entries: int = 0
    latency_p50: float | None = Field(
        None, description="successful logical call, seconds: pacing, backoff and retries included"
    )
    latency_p99: float | None = Field(None, description="as latency_p50, 99th percentile")
    attempt_latency_p50: float | None = Field(
        None, description="one successful HTTP attempt on the wire, seconds"
    )
    attempt_latency_p99: float | None = Field(None, description="as attempt_latency_p50, p99")
    limiter_wait_seconds: float = Field(
        0.0, description="total time attempts waited in the client-side rate limiter"
    )
    circuit_state: str | None = None
    farm_calls: int = 0
    farm_2xx: int = 0
    farm_429: int = 0
    farm_401: int = 0
    allowed_rps: float | None = None


class InvariantResult(BaseModel):
    """One invariant checked against the farm's ledger: pass, fail or not exercised, and why.

    ``passed`` (kept for compatibility) is true unless the invariant failed, so a not exercised
    invariant has ``passed: true`` and ``status: "not_exercised"``. Give either ``passed`` or
    ``status``; the other follows.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    passed: bool
    status: InvariantStatus
    detail: str
    figures: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _status_and_passed(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        status, passed = data.get("status"), data.get("passed")
        if status is None and passed is None:
            raise ValueError("give passed or status")
        if status is None:
            data["status"] = "pass" if passed else "fail"
        elif passed is None:
            data["passed"] = status != "fail"
        elif bool(passed) != (status != "fail"):
            raise ValueError(f"passed={passed!r} contradicts status={status!r}")
        return data

    @classmethod
    def unexercised(
        cls, name: str, detail: str, figures: dict[str, Any] | None = None
    ) -> InvariantResult:
        """A result for an invariant the run gave nothing to check."""
        return cls(
            name=name,
            status="not_exercised",
            detail=f"not exercised: {detail}",
            figures=figures or {},
        )

    @property
    def exercised(self) -> bool:
        return self.status != "not_exercised"


class WorkflowFigures(BaseModel):
    """What one registered workflow did over the whole run."""

    model_config = ConfigDict(extra="forbid")

    workflow: str
    connectors: list[str]
    iterations: int = 0
    ok: int = 0
    errors: dict[str, int] = Field(default_factory=dict)


class Scorecard(BaseModel):
    """One scenario run's result."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    scenario: str
    mode: str
    profile: str
    seed: int
    duration_seconds: float
    started_at: str
    finished_at: str
    connectors: list[ConnectorFigures]
    workflows: list[WorkflowFigures] = Field(default_factory=list)
    invariants: list[InvariantResult]
    dlq: dict[str, Any] = Field(default_factory=dict, description="backlog, replay outcome")
    verdict: Verdict
    error: str | None = Field(default=None, description="why the verdict is ERROR")

    @property
    def passed(self) -> bool:
        return self.verdict == "PASSED"

    def invariant(self, name: str) -> InvariantResult:
        """The result of one invariant by name."""
        for result in self.invariants:
            if result.name == name:
                return result
        raise KeyError(name)

    def failed_invariants(self) -> list[str]:
        """Names of the invariants that did not hold."""
        return [i.name for i in self.invariants if i.status == "fail"]

    def unexercised_invariants(self) -> list[str]:
        """Names of the invariants the run gave nothing to check (neither pass nor fail)."""
        return [i.name for i in self.invariants if i.status == "not_exercised"]

    def invariant_counts(self) -> dict[str, int]:
        """How many invariants passed, failed and were not exercised."""
        counts = dict.fromkeys(STATUSES, 0)
        for i in self.invariants:
            counts[i.status] += 1
        return counts

    def totals(self) -> dict[str, Any]:
        """Figures summed over connectors (latency: the worst connector's p99)."""
        attempts = sum(c.attempts for c in self.connectors)
        calls = sum(c.calls for c in self.connectors)
        successes = sum(c.successes for c in self.connectors)
        p99s = [c.latency_p99 for c in self.connectors if c.latency_p99 is not None]
        p50s = [c.latency_p50 for c in self.connectors if c.latency_p50 is not None]
        wire99 = [c.attempt_latency_p99 for c in self.connectors if c.attempt_latency_p99]
        wire50 = [c.attempt_latency_p50 for c in self.connectors if c.attempt_latency_p50]
        errors: dict[str, int] = {}
        for c in self.connectors:
            for cls, n in c.errors.items():
                errors[cls] = errors.get(cls, 0) + n
        return {
            "calls": calls,
            "attempts": attempts,
            "successes": successes,
            "goodput_rps": round(sum(c.goodput_rps for c in self.connectors), 2),
            "success_rate": round(successes / calls, 4) if calls else None,
            "errors": errors,
            "retries": sum(c.retries for c in self.connectors),
            "token_refreshes": sum(c.token_refreshes for c in self.connectors),
            "dlq_entries": sum(c.dlq_entries for c in self.connectors),
            "p50_seconds": round(max(p50s), 4) if p50s else None,
            "p99_seconds": round(max(p99s), 4) if p99s else None,
            "wire_p50_seconds": round(max(wire50), 4) if wire50 else None,
            "wire_p99_seconds": round(max(wire99), 4) if wire99 else None,
            "limiter_wait_seconds": round(sum(c.limiter_wait_seconds for c in self.connectors), 3),
        }

    def to_json(self) -> str:
        """The scorecard as indented JSON, totals included."""
        data = self.model_dump(mode="json")
        data["totals"] = self.totals()
        return json.dumps(data, indent=2, sort_keys=False)


def verdict_of(invariants: list[InvariantResult]) -> Verdict:
    """PASSED only if no invariant failed and at least one was exercised.

    A not exercised invariant neither passes nor fails the run; a run that exercised none proves
    nothing and is FAILED.
    """
    if not invariants or any(i.status == "fail" for i in invariants):
        return "FAILED"
    return "PASSED" if any(i.exercised for i in invariants) else "FAILED"


def closing_line(card: Scorecard) -> str:
    """One line for the end of a run: verdict and how many invariants held, failed, went unused."""
    if card.verdict == "ERROR":
        return f"{card.profile}: ERROR — {card.error or 'the run could not be judged'}"
    n = card.invariant_counts()
    line = (
        f"{card.profile}: {card.verdict} — {n['pass']} passed, {n['fail']} failed, "
        f"{n['not_exercised']} not exercised"
    )
    if n["not_exercised"]:
        line += " (" + ", ".join(card.unexercised_invariants()) + ")"
    return line


def termination_summary(card: Scorecard) -> str:
    """The compact JSON the Kubernetes Job writes to its termination log (≤ 4 KiB)."""
    totals = card.totals()
    summary: dict[str, Any] = {
        "verdict": card.verdict,
        "profile": card.profile,
        "mode": card.mode,
        "seed": card.seed,
        "duration_seconds": card.duration_seconds,
        "invariants": {i.name: i.status for i in card.invariants},
        "failed": card.failed_invariants(),
        "not_exercised": len(card.unexercised_invariants()),
        "goodput_rps": totals["goodput_rps"],
        "attempts": totals["attempts"],
        "success_rate": totals["success_rate"],
        "dlq_entries": totals["dlq_entries"],
        "p99_seconds": totals["p99_seconds"],
    }
    if card.error:
        summary["error"] = card.error[:600]
    text = json.dumps(summary, separators=(",", ":"))
    if len(text.encode()) <= TERMINATION_LOG_LIMIT:
        return text
    # Only the invariant map can grow: keep the failed ones (what an operator needs, also named
    # in ``failed``), as many as fit, and say how many were left out. Never cut the JSON itself.
    failed = card.failed_invariants()
    for keep in range(len(failed), -1, -1):
        summary["invariants"] = dict.fromkeys(failed[:keep], "fail")
        summary["failed"] = failed[:keep]
        summary["invariants_left_out"] = len(card.invariants) - keep
        text = json.dumps(summary, separators=(",", ":"))
        if len(text.encode()) <= TERMINATION_LOG_LIMIT:
            break
    return text


def expected_verdict(profile: str) -> str:
    """In a comparison only the full AAM should pass; naive and every weakened one (the
    ``sdk-default`` baseline too) should fail."""
    return "PASSED" if profile == "full" else "FAILED"
