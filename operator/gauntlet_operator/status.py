"""The ``status`` the operator writes: pydantic models, so the CRD status schema comes from them.

Status keys are camelCase (the Kubernetes convention); the ``spec`` keeps the snake_case of the
YAML files it shares with the farm and the runner.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class StatusModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def to_patch(self) -> dict[str, Any]:
        """JSON-ready dict for a merge patch; unset optional fields go as ``null`` (cleared)."""
        return self.model_dump(mode="json")


class ConditionStatus(StrEnum):
    true = "True"
    false = "False"
    unknown = "Unknown"


class Condition(StatusModel):
    """A Kubernetes-style condition: what is true, why (a CamelCase reason), and a message."""

    type: str
    status: ConditionStatus
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    message: str = ""
    lastTransitionTime: str
    observedGeneration: int | None = None


def now() -> str:
    """RFC 3339 timestamp, second precision, as Kubernetes writes them."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    type_: str,
    ok: bool | None,
    reason: str,
    message: str = "",
    *,
    generation: int | None = None,
    previous: list[dict[str, Any]] | None = None,
) -> Condition:
    """Build a condition; ``lastTransitionTime`` only moves when the status value changes."""
    status = (
        ConditionStatus.unknown
        if ok is None
        else (ConditionStatus.true if ok else ConditionStatus.false)
    )
    when = now()
    for old in previous or []:
        if old.get("type") == type_ and old.get("status") == status.value:
            when = old.get("lastTransitionTime") or when
    return Condition(
        type=type_,
        status=status,
        reason=re.sub(r"[^A-Za-z0-9_]", "", reason).lstrip("0123456789_") or "Unknown",
        message=message[:1024],
        lastTransitionTime=when,
        observedGeneration=generation,
    )


class ServicePhase(StrEnum):
    Pending = "Pending"
    Progressing = "Progressing"
    Ready = "Ready"
    Invalid = "Invalid"


class ServiceStatus(StatusModel):
    """Status of a SyntheticService (the farm Deployment behind it)."""

    phase: ServicePhase
    observedGeneration: int | None = None
    endpoint: str | None = Field(default=None, description="in-cluster URL of the farm")
    replicas: int | None = None
    readyReplicas: int | None = None
    serviceId: str | None = Field(default=None, description="spec.id, the farm's service id")
    authType: str | None = None
    rateLimitRps: float | None = None
    schemaVersion: int | None = None
    conditions: list[Condition] = Field(default_factory=list)


class ScenarioPhase(StrEnum):
    Pending = "Pending"
    #: Waiting for a farm another scenario's run is using (status.queuedBehind says whose).
    Queued = "Queued"
    Running = "Running"
    Passed = "Passed"
    Failed = "Failed"
    Error = "Error"

    @property
    def finished(self) -> bool:
        return self in (ScenarioPhase.Passed, ScenarioPhase.Failed, ScenarioPhase.Error)


class Verdict(StrEnum):
    PASSED = "PASSED"
    FAILED = "FAILED"
    ERROR = "ERROR"


class Scorecard(StatusModel):
    """The runner's termination-log summary (workflows/README.md), in status key style."""

    verdict: Verdict
    profile: str | None = None
    mode: str | None = None
    seed: int | None = None
    durationSeconds: float | None = None
    goodputRps: float | None = None
    attempts: int | None = None
    successRate: float | None = None
    dlqEntries: int | None = None
    p99Seconds: float | None = None
    error: str | None = Field(default=None, description="why the run could not be judged (ERROR)")
    invariants: dict[str, Literal["pass", "fail", "not_exercised"]] = Field(
        default_factory=dict,
        description="invariant name -> pass, fail or not_exercised (never produced the situation)",
    )
    failed: list[str] = Field(default_factory=list, description="names of the failed invariants")
    notExercised: int | None = Field(
        default=None, ge=0, description="invariants the run never exercised"
    )


class ScenarioStatus(StatusModel):
    """Status of a GauntletScenario run (one Job per generation)."""

    phase: ScenarioPhase
    observedGeneration: int | None = None
    mode: str | None = None
    jobName: str | None = None
    farms: list[str] = Field(
        default_factory=list, description="SyntheticServices (farms) the run uses, one run each"
    )
    queuedBehind: str | None = Field(
        default=None, description="the GauntletScenario whose run this one waits for"
    )
    verdict: Verdict | None = None
    scorecard: Scorecard | None = None
    startTime: str | None = None
    completionTime: str | None = None
    message: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
