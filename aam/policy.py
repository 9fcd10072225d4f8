"""A connector's rate and retry policy (the ``RatePolicy`` of the design)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aam.backoff import Backoff
from farm.spec import ServiceSpec


@dataclass(frozen=True)
class RatePolicy:
    """Where the adaptive limiter starts, and how hard a call may retry."""

    max_rps: float
    burst: int
    max_attempts: int = 6
    backoff: Backoff = field(default_factory=Backoff)
    retry_budget_capacity: float = 100.0
    retry_cost: float = 1.0
    timeout_retry_cost: float = 2.0
    #: Two retries per success are sustainable (heavy chaos); a full outage drains the budget.
    success_deposit: float = 2.0

    @classmethod
    def from_spec(cls, spec: ServiceSpec, tenant: str, **overrides: object) -> RatePolicy:
        """Start from the service's published limit for this tenant (its API documentation)."""
        limit = spec.rate_limit_for(tenant)
        return cls(max_rps=limit.max_rps, burst=limit.burst, **overrides)  # type: ignore[arg-type]
