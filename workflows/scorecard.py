"""The scorecard: what one scenario run measured, which invariants held, and the verdict.

One JSON document per run (written to a file and to the run history). The shape follows
DESIGN.md "Scorecard and verdict"; :func:`termination_summary` is the compact form (≤ 4 KiB) the
Kubernetes Job writes to its termination log.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Verdict = Literal["PASSED", "FAILED"]
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
    latency_p50: float | None = None
    latency_p99: float | None = None
    circuit_state: str | None = None
    farm_calls: int = 0
    farm_2xx: int = 0
    farm_429: int = 0
    farm_401: int = 0
    allowed_rps: float | None = None


class InvariantResult(BaseModel):
    """One invariant checked against the farm's ledger: pass/fail and why."""

    model_config = ConfigDict(extra="forbid")

    name: str
    passed: bool
    detail: str
    figures: dict[str, Any] = Field(default_factory=dict)


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
        return [i.name for i in self.invariants if not i.passed]

    def totals(self) -> dict[str, Any]:
        """Figures summed over connectors (latency: the worst connector's p99)."""
        attempts = sum(c.attempts for c in self.connectors)
        calls = sum(c.calls for c in self.connectors)
        successes = sum(c.successes for c in self.connectors)
        p99s = [c.latency_p99 for c in self.connectors if c.latency_p99 is not None]
        p50s = [c.latency_p50 for c in self.connectors if c.latency_p50 is not None]
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
        }

    def to_json(self) -> str:
        """The scorecard as indented JSON, totals included."""
        data = self.model_dump(mode="json")
        data["totals"] = self.totals()
        return json.dumps(data, indent=2, sort_keys=False)


def verdict_of(invariants: list[InvariantResult]) -> Verdict:
    """PASSED only if every invariant holds (and there is at least one)."""
    return "PASSED" if invariants and all(i.passed for i in invariants) else "FAILED"


def termination_summary(card: Scorecard) -> str:
    """The compact JSON the Kubernetes Job writes to its termination log (≤ 4 KiB)."""
    totals = card.totals()
    summary: dict[str, Any] = {
        "verdict": card.verdict,
        "profile": card.profile,
        "mode": card.mode,
        "seed": card.seed,
        "duration_seconds": card.duration_seconds,
        "invariants": {i.name: i.passed for i in card.invariants},
        "goodput_rps": totals["goodput_rps"],
        "attempts": totals["attempts"],
        "success_rate": totals["success_rate"],
        "dlq_entries": totals["dlq_entries"],
        "p99_seconds": totals["p99_seconds"],
    }
    text = json.dumps(summary, separators=(",", ":"))
    if len(text.encode()) <= TERMINATION_LOG_LIMIT:
        return text
    # Only the invariant map can grow: keep the failed ones (what an operator needs), as many
    # as fit, and say how many were left out. Never cut the JSON itself.
    failed = [i.name for i in card.invariants if not i.passed]
    for keep in range(len(failed), -1, -1):
        summary["invariants"] = dict.fromkeys(failed[:keep], False)
        summary["invariants_left_out"] = len(card.invariants) - keep
        text = json.dumps(summary, separators=(",", ":"))
        if len(text.encode()) <= TERMINATION_LOG_LIMIT:
            break
    return text
