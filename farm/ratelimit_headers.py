"""How a service describes its rate limit on the wire, in the styles real providers use.

A service's ``rate_limit_headers`` picks one:

- ``ietf`` — draft-ietf-httpapi-ratelimit-headers (structured fields):
  ``RateLimit-Policy: "default";q=<quota>;w=<window s>`` and
  ``RateLimit: "default";r=<remaining>;t=<seconds until the quota is back>``;
- ``github`` — ``X-RateLimit-Limit`` (bucket capacity), ``X-RateLimit-Remaining``,
  ``X-RateLimit-Used`` and ``X-RateLimit-Reset`` (UTC epoch seconds when the bucket is full);
- ``retry_after`` — nothing on success, ``Retry-After`` (whole seconds) on a 429;
- ``none`` — nothing at all, not even ``Retry-After``.

A quota per window says the rate; nothing here names a rate in a made-up parameter.
"""

from __future__ import annotations

import math
import time

from farm.ratelimit import BucketDecision
from farm.spec import RateLimitHeaders

Headers = list[tuple[bytes, bytes]]
#: Windows tried (seconds) to express a fractional rate as a whole quota per window.
_WINDOWS = (1, 2, 4, 5, 10, 20, 60)
POLICY_NAME = "default"
#: The styles as module constants (an enum member looked up on its class costs ~0.1 µs; these
#: run on every data request).
_IETF, _GITHUB, _NONE = RateLimitHeaders.ietf, RateLimitHeaders.github, RateLimitHeaders.none
#: The styles that tell a client, on every answer, how much of its quota is left.
ADVERTISING_STYLES = frozenset({_IETF, _GITHUB})


def quota_window(rate: float) -> tuple[int, int]:
    """(q, w) with q/w == rate exactly when a small window allows it, else per minute."""
    for window in _WINDOWS:
        quota = rate * window
        if abs(quota - round(quota)) < 1e-9 and round(quota) >= 1:
            return round(quota), window
    return max(1, round(rate * 60)), 60


def policy_headers(style: RateLimitHeaders, capacity: int, rate: float) -> Headers:
    """The headers that only change with the limit itself (computed once per chaos change)."""
    if style == _IETF:
        quota, window = quota_window(rate)
        return [(b"ratelimit-policy", f'"{POLICY_NAME}";q={quota};w={window}'.encode())]
    if style == _GITHUB:
        return [(b"x-ratelimit-limit", str(capacity).encode())]
    return []


def decision_headers(
    style: RateLimitHeaders, decision: BucketDecision, capacity: int, now_epoch: float | None = None
) -> Headers:
    """The per-request headers: what is left of the quota and when it is back."""
    if style == _IETF:
        value = f'"{POLICY_NAME}";r={decision.remaining};t={decision.reset_seconds}'
        return [(b"ratelimit", value.encode())]
    if style == _GITHUB:
        now = time.time() if now_epoch is None else now_epoch
        used = max(0, capacity - decision.remaining)
        return [
            (b"x-ratelimit-remaining", str(decision.remaining).encode()),
            (b"x-ratelimit-used", str(used).encode()),
            (b"x-ratelimit-reset", str(math.ceil(now + decision.reset_seconds)).encode()),
        ]
    return []


def retry_after_headers(style: RateLimitHeaders, seconds: int) -> Headers:
    """``Retry-After`` on a 429, unless the service sends nothing at all."""
    if style == _NONE:
        return []
    return [(b"retry-after", str(max(1, seconds)).encode())]
