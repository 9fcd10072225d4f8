"""A run's hold on its farms: the lease, its renewal, and the end-of-run identity check.

Before it resets anything, a run leases every distinct farm it uses (``farm/README.md``, "Farm
lease"); a busy farm is :class:`~workflows.farm_client.FarmBusy` (or, with ``wait``, waited for).
While the run goes on, a task renews the leases. After its own reset the run notes each farm's
boot id and epoch; at the end :meth:`FarmLeases.verify` reads them again. A farm that restarted
(new boot id), was reset by someone else (new epoch) or lost the run's lease cannot vouch for the
run's ground truth: :class:`FarmUntrustworthy`, which the runner reports as ``ERROR`` (exit 2),
never as PASSED or FAILED.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from workflows.farm_client import FarmBusy, FarmClient, FarmError, LeaseLost

log = logging.getLogger(__name__)

LEASE_TTL_SECONDS = 30.0
#: Renew this often (a third of the TTL: two renewals may fail before the lease lapses).
RENEW_EVERY_SECONDS = LEASE_TTL_SECONDS / 3
#: How often a waiting run asks a busy farm again.
WAIT_POLL_SECONDS = 2.0


class FarmUntrustworthy(FarmError):
    """The farm cannot vouch for this run's ground truth (restarted, reset by someone else,
    lease lost): the run is ``ERROR``."""


class FarmLeases:
    """The leases of one run on its farms."""

    def __init__(
        self,
        clients: list[FarmClient],
        holder: str,
        *,
        wait_seconds: float = 0.0,
        ttl: float = LEASE_TTL_SECONDS,
    ) -> None:
        self.clients = clients
        self.holder = holder
        self.wait_seconds = wait_seconds
        self.ttl = ttl
        self.baseline: dict[str, dict[str, Any]] = {}
        self.problems: dict[str, str] = {}
        self._renewer: asyncio.Task[None] | None = None

    async def acquire(self, on_wait: Any = None) -> None:
        """Lease every farm, or none: :class:`FarmBusy` when one is held by someone else and
        ``wait_seconds`` ran out (leases taken so far are given back)."""
        deadline = time.monotonic() + self.wait_seconds
        try:
            for client in self.clients:
                for _ in range(1_000_000):  # bounded by the deadline long before
                    try:
                        await client.acquire_lease(self.holder, self.ttl)
                        break
                    except FarmBusy as busy:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise
                        if on_wait is not None:
                            on_wait(busy)
                        await asyncio.sleep(min(WAIT_POLL_SECONDS, left))
        except BaseException:
            await self.release()
            raise

    def mark_baseline(self) -> None:
        """Note each farm's boot id and epoch (call right after the run's own reset)."""
        for client in self.clients:
            self.baseline[client.url] = dict(client.identity)
        self.start_renewing()

    def start_renewing(self) -> None:
        """Renew the leases in the background until :meth:`release`."""
        if self._renewer is None:
            self._renewer = asyncio.create_task(self._renew(), name="farm-lease-renewal")

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY_SECONDS)
            for client in self.clients:
                if client.url in self.problems:
                    continue
                try:
                    await client.renew_lease(self.ttl)
                except LeaseLost as exc:
                    # Not fatal here: the run goes on and verify() turns it into ERROR.
                    self.problems[client.url] = f"the run lost its lease ({exc})"
                    log.warning("%s", self.problems[client.url])
                except FarmError as exc:  # unreachable for now: try again next round
                    log.warning("could not renew the lease on %s: %s", client.url, exc)

    async def verify(self) -> None:
        """:class:`FarmUntrustworthy` if a farm restarted, was reset by someone else, or the
        run lost its lease during the run."""
        for client in self.clients:
            before = self.baseline.get(client.url)
            if before is None:
                continue
            await client.status()
            now = client.identity
            if now.get("boot_id") != before.get("boot_id"):
                raise FarmUntrustworthy(
                    f"farm {client.url} restarted during the run (boot id "
                    f"{before.get('boot_id')} at the start, {now.get('boot_id')} at the end): "
                    "its ground truth does not cover the whole run"
                )
            if now.get("epoch") != before.get("epoch"):
                raise FarmUntrustworthy(
                    f"farm {client.url} was reset by someone else during the run (epoch "
                    f"{before.get('epoch')} at the start, {now.get('epoch')} at the end)"
                )
            if client.url in self.problems:
                raise FarmUntrustworthy(self.problems[client.url])

    async def release(self) -> None:
        """Stop renewing and give every lease back (best effort: a dead farm has none)."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        for client in self.clients:
            with contextlib.suppress(FarmError):
                await client.release_lease()
            client.lease_id = None
