"""A connector's rate and retry policy (the ``RatePolicy`` of the design)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aam.backoff import Backoff
from aam.descriptor import ConnectorDescriptor

#: Where the limiter starts when the provider publishes no limit: fast enough never to be the
#: bottleneck before the first answer says otherwise (headers, 429s).
UNPUBLISHED_START_RPS = 1000.0
UNPUBLISHED_START_BURST = 20


@dataclass(frozen=True)
class RatePolicy:
    """Where the adaptive limiter starts, and how hard a call may retry."""

    max_rps: float
    burst: int
    #: False when the provider published no limit: ``max_rps`` is only a starting guess.
    published: bool = True
    max_attempts: int = 6
    backoff: Backoff = field(default_factory=Backoff)
    retry_budget_capacity: float = 100.0
    retry_cost: float = 1.0
    timeout_retry_cost: float = 2.0
    #: Two retries per success are sustainable (heavy chaos); a full outage drains the budget.
    success_deposit: float = 2.0

    @classmethod
    def from_descriptor(cls, descriptor: ConnectorDescriptor, **overrides: object) -> RatePolicy:
        """Start from the limit the provider publishes for this tenant, if it publishes one."""
        limit = descriptor.rate_limit
        if limit is None:
            return cls(  # type: ignore[arg-type]
                max_rps=UNPUBLISHED_START_RPS,
                burst=UNPUBLISHED_START_BURST,
                published=False,
                **overrides,
            )
        return cls(max_rps=limit.max_rps, burst=limit.burst, **overrides)  # type: ignore[arg-type]
