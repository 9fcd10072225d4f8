"""The farm lease: one run at a time owns a farm's chaos, reset and ledger window.

A run takes an exclusive lease that expires unless it is renewed (``POST /admin/lease``, then
``PUT /admin/lease/{id}`` every few seconds). While a lease is held, ``POST /admin/chaos`` and
``POST /admin/reset`` need its id in ``X-Farm-Lease``; anyone else gets ``409 farm_leased`` with
who holds it and until when. A lease that expires (its runner crashed or hung) is dropped and the
farm's chaos goes back to ``calm`` by itself. Leases live in memory: a restarted farm has none,
and the runner notices the restart by the boot id anyway.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("farm.lease")

MIN_TTL_SECONDS = 1.0
MAX_TTL_SECONDS = 3600.0
MAX_HOLDER_CHARS = 200


@dataclass
class Lease:
    """Who holds the farm, since when and until when (Unix time)."""

    id: str
    holder: str
    acquired_at: float
    expires_at: float

    def public(self) -> dict[str, Any]:
        """What anyone with the admin token may see (the id is the holder's to keep)."""
        return {
            "holder": self.holder,
            "acquired_at": round(self.acquired_at, 3),
            "expires_at": round(self.expires_at, 3),
            "expires_in": round(max(0.0, self.expires_at - time.time()), 3),
        }


class LeaseHeld(Exception):
    """Someone else holds the farm."""

    def __init__(self, lease: Lease) -> None:
        super().__init__(f"farm leased by {lease.holder!r}")
        self.lease = lease


class LeaseUnknown(Exception):
    """No such lease (expired, released, or taken on an earlier boot of the farm)."""


class LeaseBook:
    """The one lease of a farm (or none). ``on_expire`` runs when a lease lapses unrenewed."""

    def __init__(self, on_expire: Callable[[Lease], None], clock: Callable[[], float] = time.time):
        self._lease: Lease | None = None
        self._on_expire = on_expire
        self._clock = clock

    def current(self) -> Lease | None:
        """The live lease, expiring a lapsed one first."""
        lease = self._lease
        if lease is not None and lease.expires_at <= self._clock():
            self._lease = None
            log.warning("lease of %r expired unrenewed; chaos back to calm", lease.holder)
            self._on_expire(lease)
            return None
        return lease

    def acquire(self, holder: str, ttl: float) -> Lease:
        """A new lease for ``holder``; :class:`LeaseHeld` if someone holds one."""
        held = self.current()
        if held is not None:
            raise LeaseHeld(held)
        now = self._clock()
        lease = Lease(f"lease-{secrets.token_hex(12)}", holder, now, now + ttl)
        self._lease = lease
        log.info("farm leased by %r for %.0f s", holder, ttl)
        return lease

    def renew(self, lease_id: str, ttl: float) -> Lease:
        """Extend the lease ``lease_id``; :class:`LeaseUnknown` if it is not the live one."""
        lease = self.current()
        if lease is None or lease.id != lease_id:
            raise LeaseUnknown(lease_id)
        lease.expires_at = self._clock() + ttl
        return lease

    def release(self, lease_id: str) -> None:
        """Give the farm back (chaos is the holder's to restore before that)."""
        lease = self.current()
        if lease is None or lease.id != lease_id:
            raise LeaseUnknown(lease_id)
        self._lease = None
        log.info("lease of %r released", lease.holder)

    def check(self, lease_id: str | None) -> None:
        """Allow a chaos/reset call: no live lease, or ``lease_id`` is the live one."""
        lease = self.current()
        if lease is not None and lease.id != lease_id:
            raise LeaseHeld(lease)
