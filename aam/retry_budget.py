"""A per-connector retry budget (AWS SDK "standard" retry quota, gRPC retry throttling).

Each retry withdraws tokens; each successful attempt deposits some back. When the budget is
empty, calls get one attempt only, so a full outage costs about one request per call instead of
``max_attempts`` — retries stop multiplying load exactly when the server is least able to take it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RetryBudget:
    """Token bucket of retries, shared by every call of one connector."""

    capacity: float = 100.0
    retry_cost: float = 1.0
    #: Timeouts cost more: they hold a connection for the whole timeout on a struggling server.
    timeout_cost: float = 2.0
    success_deposit: float = 1.0
    tokens: float = field(default=-1.0)
    denied: int = 0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.capacity

    def try_withdraw(self, *, timeout: bool = False) -> bool:
        """Take the cost of one retry; ``False`` (and nothing taken) if the budget is short."""
        cost = self.timeout_cost if timeout else self.retry_cost
        if self.tokens < cost:
            self.denied += 1
            return False
        self.tokens -= cost
        return True

    def deposit(self) -> None:
        """Record a successful attempt."""
        self.tokens = min(self.capacity, self.tokens + self.success_deposit)
