"""Tenant credentials and the token lifecycle of one connector.

- :class:`TenantCredentials` — what the operator hands the AAM (secrets never in ``repr``).
- :class:`CredentialDescriptor` — the live token: value, expiry, version.
- :class:`TokenLifecycle` — refresh before expiry (``expires_in``, with skew), single-flight
  refresh so N concurrent callers cause one token request, and one refresh-and-retry on a 401 for
  a token believed valid (server-side rotation). Bad credentials fail fast and are never retried.

Nobody tells the AAM that a provider retires tokens after N calls. It learns it from the wire: a
token refused with a 401 while its ``expires_in`` said it was valid was retired early, after as
many calls as the server accepted with it. From then on each token is used for at most that many
calls (the next one is fetched in the background at 80 %), so a rotation costs one token request
and no refused call — the first rotation is the only one that costs 401s.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aam.errors import InvalidCredentials

#: Refresh this long before expiry (capped at a share of the TTL for short-lived tokens).
DEFAULT_SKEW_SECONDS = 30.0
SKEW_SHARE_OF_TTL = 0.2
#: Inside this margin before expiry a token is no longer used at all: callers wait for the new one.
HARD_MARGIN_SECONDS = 0.05
#: With a learned per-token call limit, fetch the next token once this share is used.
USES_PREFETCH_SHARE = 0.8
#: Retired tokens whose late answers still count towards the learned limit.
RETIRED_KEPT = 4


@dataclass(frozen=True)
class TenantCredentials:
    """A tenant's credentials for one service. Secrets are kept out of ``repr``."""

    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)
    token_url: str | None = None
    api_key_header: str | None = None
    auth_type: str | None = None

    @classmethod
    def from_farm(cls, entry: Mapping[str, Any]) -> TenantCredentials:
        """Build from one tenant entry of the farm's ``GET /admin/credentials`` answer."""
        return cls(
            client_id=entry.get("client_id"),
            client_secret=entry.get("client_secret"),
            api_key=entry.get("api_key"),
            token_url=entry.get("token_url"),
            api_key_header=entry.get("api_key_header"),
            auth_type=entry.get("auth_type"),
        )


@dataclass
class CredentialDescriptor:
    """The token a connector currently uses."""

    auth_type: str
    access_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float = 0.0  # monotonic seconds; 0 = no token yet
    ttl_seconds: float = 0.0
    version: int = 0
    uses: int = 0  # data calls sent with this token (servers may rotate after N)
    accepted: int = 0  # answers to those calls that were not a 401
    refused_early: bool = False  # a 401 came while expires_in said the token was valid


@dataclass(frozen=True)
class IssuedToken:
    """What a token endpoint returned."""

    access_token: str
    expires_in: float
    refresh_token: str | None = None


#: Fetches a new token; raises an ``AamError`` leaf (``InvalidCredentials`` for a refusal).
TokenFetcher = Callable[[], Awaitable[IssuedToken]]


class TokenLifecycle:
    """Keeps one connector's OAuth2 token fresh; ``refresh`` off means fetch once, never renew."""

    def __init__(
        self,
        fetch: TokenFetcher,
        *,
        refresh: bool = True,
        skew_seconds: float = DEFAULT_SKEW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        connector_id: str | None = None,
        on_issued: Callable[[], None] | None = None,
    ) -> None:
        self._fetch = fetch
        #: Calls a token survives, learned from early 401s (None: no early retirement seen).
        self.max_uses: int | None = None
        self._retired: dict[int, CredentialDescriptor] = {}
        self.refresh_enabled = refresh
        self.skew_seconds = skew_seconds
        self._clock = clock
        self.connector_id = connector_id
        self._on_issued = on_issued
        self.descriptor = CredentialDescriptor(auth_type="oauth2_client_credentials")
        self._inflight: asyncio.Task[CredentialDescriptor] | None = None
        self._background: asyncio.Task[None] | None = None
        self.token_requests = 0
        self._broken: InvalidCredentials | None = None

    async def token(self) -> tuple[str, int]:
        """A usable (access token, version), refreshing first if it is about to expire.

        Each call counts as one use of the token returned (the caller sends it once).
        """
        if self._broken is not None:
            raise self._broken
        d = self.descriptor
        if d.access_token is None:
            d = await self._refresh_single_flight()
        elif self.refresh_enabled:
            # Bounded: each pass waits for a fresh token; only a flood of waiters larger than
            # the per-token limit can use one up before this caller gets a slot.
            for _ in range(8):
                if not self._exhausted(d, self._clock()):
                    break
                d = await self._refresh_single_flight()
            if self._due(d, self._clock()):
                # Still valid: keep using it while one background refresh gets the next one.
                self._refresh_in_background()
        d.uses += 1
        assert d.access_token is not None
        return d.access_token, d.version

    def _exhausted(self, d: CredentialDescriptor, now: float) -> bool:
        if now >= d.expires_at - HARD_MARGIN_SECONDS:
            return True
        return self.max_uses is not None and d.uses >= self.max_uses

    def _due(self, d: CredentialDescriptor, now: float) -> bool:
        if now >= d.expires_at - self._skew(d):
            return True
        return self.max_uses is not None and d.uses >= self.max_uses * USES_PREFETCH_SHARE

    def on_answer(self, version: int) -> None:
        """A call made with the token of ``version`` was answered with something other than 401."""
        d = self.descriptor
        if d.version != version:
            retired = self._retired.get(version)
            if retired is None:
                return
            d = retired
        d.accepted += 1
        if d.refused_early and self.max_uses is not None and d.accepted > self.max_uses:
            self.max_uses = d.accepted  # a late answer: the token served more than first seen

    async def on_unauthorized(self, version: int) -> bool:
        """A 401 for the token of ``version``: renew it (once for all callers). Retry if True."""
        if not self.refresh_enabled:
            return False
        d = self.descriptor
        if d.version == version:
            if self._clock() < d.expires_at - HARD_MARGIN_SECONDS and d.accepted > 0:
                # Believed valid by its expiry and refused: the server retires tokens by use.
                d.refused_early = True
                self._learn(d.accepted)
            d.expires_at = 0.0
            await self._refresh_single_flight()
        return True

    def _learn(self, served: int) -> None:
        # The largest count a retired token was seen to serve: a token revoked for another
        # reason must not shrink the limit below what tokens really survive.
        self.max_uses = max(served, self.max_uses or 0)

    def _skew(self, d: CredentialDescriptor) -> float:
        return min(self.skew_seconds, d.ttl_seconds * SKEW_SHARE_OF_TTL)

    def _refresh_in_background(self) -> None:
        idle = self._inflight is None or self._inflight.done()
        if idle and (self._background is None or self._background.done()):
            self._background = asyncio.ensure_future(self._background_refresh())

    async def _background_refresh(self) -> None:
        # Failure here is not surfaced: the next caller past the hard margin refreshes itself.
        try:
            await self._refresh_single_flight()
        except Exception:
            return

    async def _refresh_single_flight(self) -> CredentialDescriptor:
        # The request runs in its own task: a caller that is cancelled while waiting does not
        # cancel the refresh the other callers are waiting for.
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._refresh())
            self._inflight.add_done_callback(_retrieve)
        return await asyncio.shield(self._inflight)

    async def _refresh(self) -> CredentialDescriptor:
        self.token_requests += 1
        if self._on_issued is not None:
            self._on_issued()
        try:
            issued = await self._fetch()
        except InvalidCredentials as exc:
            self._broken = exc  # fail fast from now on: these credentials are wrong
            raise
        old = self.descriptor
        if old.access_token is not None:
            self._retired[old.version] = old
            while len(self._retired) > RETIRED_KEPT:
                del self._retired[min(self._retired)]
        d = CredentialDescriptor(
            auth_type="oauth2_client_credentials",
            access_token=issued.access_token,
            refresh_token=issued.refresh_token,
            expires_at=self._clock() + issued.expires_in,
            ttl_seconds=issued.expires_in,
            version=self.descriptor.version + 1,
        )
        self.descriptor = d
        return d

    async def aclose(self) -> None:
        """Stop a refresh in progress, if any."""
        for task in (self._background, self._inflight):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


def _retrieve(task: asyncio.Task[CredentialDescriptor]) -> None:
    """Mark a finished refresh's exception as seen (its waiters, if any, re-raise it)."""
    if not task.cancelled():
        task.exception()
