"""The scenario spec: a YAML file locally, the ``spec`` of a ``GauntletScenario`` on Kubernetes.

Thresholds live here and only here: ``DEFAULT_THRESHOLDS`` per mode, overridable per scenario.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aam.profile import AamProfile
from farm.spec import DNS_LABEL, SERVICE_ID


class Mode(StrEnum):
    calm = "calm"
    mild = "mild"
    storm = "storm"
    hell = "hell"


class ScenarioModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkflowRun(ScenarioModel):
    """One workflow to run, how many concurrent copies, and its parameters."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="a registered workflow name")
    concurrency: int = Field(default=1, ge=1, le=256)
    services: list[Annotated[str, Field(pattern=SERVICE_ID)]] | None = Field(
        default=None, description="restrict to these services (default: the scenario's)"
    )
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)


class Thresholds(ScenarioModel):
    """Pass/fail limits for the invariants; unset fields take the mode's defaults."""

    min_operation_success: float | None = Field(
        default=None, ge=0, le=1, description="share of logical operations that must succeed"
    )
    max_rate_limited_share: float | None = Field(default=None, ge=0, le=1)
    max_retry_after_violation_share: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="attempts that arrive inside a Retry-After window, per Retry-After answer",
    )
    max_tokens_per_invalidation: float | None = Field(
        default=None, ge=1, description="token requests allowed per expiry or rotation (x2 slack)"
    )
    freshness_window_seconds: float | None = Field(
        default=None,
        ge=0,
        le=60,
        description="how far a read may trail a record update and still count as fresh",
    )
    min_goodput_ratio: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="successful attempts per second against the allowed rate, judged where the "
        "workflows could have sent twice the limit: a floor for gross under-use",
    )
    max_dlq_entries: int | None = Field(default=None, ge=0)
    min_retry_success_rate: float | None = Field(default=None, ge=0, le=1)
    max_load_amplification: float | None = Field(
        default=None,
        ge=0,
        description="farm-counted HTTP attempts per logical call; unset = not checked "
        "(set it in outage scenarios: a circuit breaker sheds load instead of retrying)",
    )


#: The mode defaults (seed figures: DLQ < 100, retry success > 80% even in hell).
DEFAULT_THRESHOLDS: dict[Mode, Thresholds] = {
    Mode.calm: Thresholds(
        min_operation_success=0.99,
        max_retry_after_violation_share=0.1,
        max_tokens_per_invalidation=2.0,
        freshness_window_seconds=1.0,
        max_rate_limited_share=0.02,
        min_goodput_ratio=0.3,
        max_dlq_entries=0,
        min_retry_success_rate=0.9,
    ),
    Mode.mild: Thresholds(
        min_operation_success=0.97,
        max_retry_after_violation_share=0.1,
        max_tokens_per_invalidation=2.0,
        freshness_window_seconds=1.0,
        max_rate_limited_share=0.05,
        min_goodput_ratio=0.25,
        # The standard scenarios take stripe's write path down for 4 s: with two writers the
        # reference AAM parks about 7 writes there by design (measured); an AAM that parks a
        # write at its first fault parks about 5 % of all writes (mutant parks-writes-at-once).
        max_dlq_entries=20,
        min_retry_success_rate=0.9,
    ),
    Mode.storm: Thresholds(
        min_operation_success=0.9,
        max_retry_after_violation_share=0.1,
        max_tokens_per_invalidation=2.0,
        freshness_window_seconds=1.0,
        max_rate_limited_share=0.10,
        min_goodput_ratio=0.2,
        max_dlq_entries=50,
        min_retry_success_rate=0.85,
    ),
    Mode.hell: Thresholds(
        min_operation_success=0.7,
        max_retry_after_violation_share=0.1,
        max_tokens_per_invalidation=2.0,
        freshness_window_seconds=1.0,
        max_rate_limited_share=0.20,
        min_goodput_ratio=0.1,
        max_dlq_entries=99,
        min_retry_success_rate=0.8,
    ),
}


class SecretKeyRef(ScenarioModel):
    """A key of a Kubernetes Secret in the scenario's namespace."""

    name: str = Field(pattern=DNS_LABEL, max_length=253)
    key: str = Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)


class ExternalAam(ScenarioModel):
    """An AAM under test served over the HTTP contract (aam/README.md) instead of the reference
    AAM in the runner; its token comes from ``$GAUNTLET_AAM_TOKEN`` (on Kubernetes: from
    ``tokenSecretRef``, which the operator puts in the runner Job's environment)."""

    url: str = Field(pattern=r"^https?://[^\s?#]+$", max_length=2000)
    token_secret_ref: SecretKeyRef | None = Field(default=None, alias="tokenSecretRef")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ScheduledOutage(ScenarioModel):
    """A full outage of a service (or a tenant) at a fixed time of the run (POST /admin/outages)."""

    service: str = Field(pattern=SERVICE_ID, description="one of the scenario's services")
    tenant: str | None = Field(
        default=None, pattern=DNS_LABEL, description="one tenant only (default: every tenant)"
    )
    at_seconds: float = Field(ge=0, le=3600, description="start, in seconds after the run began")
    duration_seconds: float = Field(gt=0, le=3600)
    methods: list[Literal["GET", "POST", "PUT", "PATCH", "DELETE"]] | None = Field(
        default=None,
        min_length=1,
        description="only requests of these methods (e.g. [POST]: the write path is down, reads "
        "still work); default: every request",
    )


class ScenarioSpec(ScenarioModel):
    """What to run: chaos mode, for how long, against which services, with which AAM profile."""

    name: str = Field(pattern=DNS_LABEL, max_length=63)
    description: str | None = Field(default=None, max_length=500)
    mode: Mode = Mode.mild
    duration_seconds: float = Field(default=60, gt=0, le=3600)
    seed: int = Field(default=42, ge=0)
    services: list[Annotated[str, Field(pattern=SERVICE_ID)]] = Field(min_length=1)
    tenants: list[Annotated[str, Field(pattern=DNS_LABEL)]] | None = Field(
        default=None, description="tenants to use on every service (default: all of each)"
    )
    workflows: list[WorkflowRun] = Field(min_length=1)
    profile: AamProfile = Field(default_factory=AamProfile)
    aam: ExternalAam | None = Field(
        default=None,
        description="test the AAM at this URL (the HTTP contract) instead of the reference AAM "
        "with 'profile'",
    )
    operation_deadline_seconds: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="an operation the AAM has not answered this long after it was handed over "
        "is judged failed (the AAM hung), not cut short by the end of the run",
    )
    outages: list[ScheduledOutage] = Field(
        default_factory=list,
        max_length=100,
        description="full outages at fixed times, on top of the mode's seeded faults (writes "
        "caught in one end in the DLQ and are replayed after the run)",
    )
    thresholds: Thresholds = Field(default_factory=Thresholds)

    @model_validator(mode="after")
    def _outages_hit_the_scenario(self) -> ScenarioSpec:
        for i, outage in enumerate(self.outages):
            if outage.service not in self.services:
                raise ValueError(
                    f"outages[{i}].service: {outage.service!r} is not one of the scenario's "
                    f"services ({', '.join(self.services)})"
                )
            if self.tenants is not None and outage.tenant not in (None, *self.tenants):
                raise ValueError(
                    f"outages[{i}].tenant: {outage.tenant!r} is not one of the scenario's "
                    f"tenants ({', '.join(self.tenants)})"
                )
        return self

    def effective_thresholds(self) -> Thresholds:
        """The mode's defaults with this scenario's explicit values on top."""
        base = DEFAULT_THRESHOLDS[self.mode].model_dump()
        base.update(self.thresholds.model_dump(exclude_none=True))
        return Thresholds(**base)
