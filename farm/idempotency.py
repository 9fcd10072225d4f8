"""Server-side ``Idempotency-Key`` handling (IETF draft-ietf-httpapi-idempotency-key-header).

Per (service, tenant, key): the fingerprint of the first request's body, and once it completed,
its stored response. A repeat with the same body replays the response; with a different body it
is refused (422); while the first is still being processed it is refused (409).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from farm.clock import Clock

MAX_KEY_LENGTH = 255


def valid_key(key: str) -> bool:
    """1-255 printable ASCII characters."""
    return 0 < len(key) <= MAX_KEY_LENGTH and all(" " <= c <= "~" for c in key)


@dataclass(slots=True)
class StoredResponse:
    """What a replay answers with."""

    status: int
    body: bytes


@dataclass(slots=True)
class _Entry:
    fingerprint: str
    expires_at: float
    response: StoredResponse | None = None  # None while the first request is in flight


class Verdict(Enum):
    NEW = "new"  # first use: process it, then complete() or abandon()
    REPLAY = "replay"
    MISMATCH = "mismatch"  # 422
    IN_FLIGHT = "in_flight"  # 409


class IdempotencyStore:
    """Keys and stored responses of every service that honours the header."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._entries: dict[tuple[str, str, str], _Entry] = {}

    def begin(
        self, scope: tuple[str, str, str], fingerprint: str, ttl_seconds: float
    ) -> tuple[Verdict, StoredResponse | None]:
        """Look ``scope`` (service, tenant, key) up; on NEW, reserve the key as in flight."""
        now = self._clock.now()
        entry = self._entries.get(scope)
        if entry is not None and entry.expires_at <= now:
            entry = None
        if entry is None:
            self._entries[scope] = _Entry(fingerprint, now + ttl_seconds)
            return Verdict.NEW, None
        if entry.fingerprint != fingerprint:
            return Verdict.MISMATCH, None
        if entry.response is None:
            return Verdict.IN_FLIGHT, None
        return Verdict.REPLAY, entry.response

    def complete(self, scope: tuple[str, str, str], response: StoredResponse) -> None:
        """Store the response of a NEW request (it committed)."""
        entry = self._entries.get(scope)
        if entry is not None:
            entry.response = response

    def abandon(self, scope: tuple[str, str, str]) -> None:
        """Release a NEW key whose request did not commit, so a retry can."""
        entry = self._entries.get(scope)
        if entry is not None and entry.response is None:
            del self._entries[scope]

    def clear(self) -> None:
        """Forget every key (admin reset)."""
        self._entries.clear()

    def restore(
        self, scope: tuple[str, str, str], fingerprint: str, response: StoredResponse, ttl: float
    ) -> None:
        """Put back a completed key a previous process stored (``ttl``: seconds it has left)."""
        if ttl > 0:
            self._entries[scope] = _Entry(fingerprint, self._clock.now() + ttl, response)
