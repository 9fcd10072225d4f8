"""The token endpoint's own rate limit and faults, per (service, tenant) client.

Off by default (a token is always issued to a good client). A spec's ``auth.token_endpoint``
sets a per-client token bucket and a 503 share; the ``hell`` chaos level turns
:data:`HELL_TOKEN_LIMITS` on for OAuth2 services that set none, so a refresh storm costs
something there. Refusals use the OAuth2 error shape (``{"error", "error_description"}``) with
``Retry-After``; decisions come from an RNG seeded by ``(seed, service, tenant)`` and are
counted in the fault ledger (``token_rate_limited``, ``token_error``).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from farm.chaos import ChaosLevel
from farm.ratelimit import TokenBucket
from farm.spec import AuthType, ServiceSpec, TokenEndpointLimits

HELL_TOKEN_LIMITS = TokenEndpointLimits(max_rps=2.0, burst=5, error_rate=0.1)


@dataclass(frozen=True, slots=True)
class TokenRefusal:
    """A token request answered with an error instead of a token."""

    status: int
    kind: str  # the fault ledger kind
    error: str
    description: str
    retry_after: int


def token_limits(spec: ServiceSpec, level: ChaosLevel) -> TokenEndpointLimits | None:
    """The token endpoint's limits for ``spec`` at ``level`` (None: no limit, no faults)."""
    if spec.auth.type is not AuthType.oauth2_client_credentials or level is ChaosLevel.off:
        return None
    if spec.auth.token_endpoint is not None:
        return spec.auth.token_endpoint
    return HELL_TOKEN_LIMITS if level is ChaosLevel.hell else None


class TokenGuard:
    """One client's token-endpoint bucket and dice."""

    __slots__ = ("_bucket", "_limits", "_rng")

    def __init__(self, seed: int, service: str, tenant: str) -> None:
        digest = hashlib.blake2b(f"token:{seed}:{service}:{tenant}".encode(), digest_size=16)
        self._rng = random.Random(int.from_bytes(digest.digest(), "big"))
        self._limits: TokenEndpointLimits | None = None
        self._bucket: TokenBucket | None = None

    def configure(self, limits: TokenEndpointLimits | None, now: float) -> None:
        """New limits (a chaos level change); the bucket starts full."""
        self._limits = limits
        self._bucket = TokenBucket(limits.burst, limits.max_rps, now) if limits else None

    def check(self, now: float) -> TokenRefusal | None:
        """Refuse this token request, or let it through. One draw per request when limited."""
        limits, bucket = self._limits, self._bucket
        if limits is None or bucket is None:
            return None
        draw = self._rng.random()
        decision = bucket.acquire(now)
        if not decision.allowed:
            return TokenRefusal(
                429, "token_rate_limited", "rate_limited",
                "too many token requests for this client", decision.retry_after,
            )  # fmt: skip
        if draw < limits.error_rate:
            return TokenRefusal(
                503, "token_error", "temporarily_unavailable",
                "the token service is unavailable", 1,
            )  # fmt: skip
        return None
