"""Token bucket: ``capacity`` tokens, refilled at ``rate`` per second, one token per request."""

from __future__ import annotations

import math
from typing import NamedTuple


class BucketDecision(NamedTuple):
    """The outcome of one :meth:`TokenBucket.acquire`, with what the RateLimit headers need."""

    allowed: bool
    remaining: int
    reset_seconds: int  # until the bucket is full again
    retry_after: int  # whole seconds until one token is available (>= 1 when refused)


class TokenBucket:
    """A classic token bucket. Time is passed in, so tests need no sleeping."""

    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        if capacity < 1 or rate <= 0:
            raise ValueError("a token bucket needs capacity >= 1 and rate > 0")
        self.capacity = float(capacity)
        self.rate = float(rate)
        self.tokens = float(capacity)
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def acquire(self, now: float) -> BucketDecision:
        """Take one token if there is one."""
        tokens = self.tokens
        if now > self.updated:  # the refill, inline: this runs on every data request
            tokens = min(self.capacity, tokens + (now - self.updated) * self.rate)
            self.updated = now
        if tokens >= 1.0:
            tokens -= 1.0
            allowed = True
            retry_after = 0
        else:
            allowed = False
            retry_after = max(1, math.ceil((1.0 - tokens) / self.rate))
        self.tokens = tokens
        reset = math.ceil((self.capacity - tokens) / self.rate)
        return BucketDecision(allowed, int(tokens), reset, retry_after)

    def reshape(self, capacity: float, rate: float, now: float) -> None:
        """Change capacity and rate (chaos level), keeping at most the new capacity's tokens."""
        self._refill(now)
        self.capacity = float(max(1.0, capacity))
        self.rate = float(rate)
        self.tokens = min(self.tokens, self.capacity)
