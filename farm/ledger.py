"""The ground truth: every committed write and every injected fault, as the farm really did it.

The invariant checker compares what clients believe against this. It lives in memory (no I/O on
the hot path); the event loop is single-threaded and no entry is written across an ``await``, so
each append is atomic with the commit it records. Each write gets a ledger sequence number that
is never reused (not even after a reset or a restart); :class:`farm.store.FarmStore` copies
every entry to the farm's SQLite file off the request path.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class LedgerWrite:
    """One committed effect."""

    service: str
    tenant: str
    resource: str
    record_id: str
    idempotency_key: str | None
    lookup_value: Any
    body_sha256: str
    committed_at: float  # Unix time
    outcome: str  # ok | commit_then_fail
    seq: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "service": self.service,
            "tenant": self.tenant,
            "resource": self.resource,
            "record_id": self.record_id,
            "idempotency_key": self.idempotency_key,
            "lookup_value": self.lookup_value,
            "body_sha256": self.body_sha256,
            "committed_at": self.committed_at,
            "outcome": self.outcome,
        }


class Ledger:
    """Committed writes (in commit order) and fault counts per (service, tenant, kind)."""

    def __init__(
        self, first_seq: int = 0, on_fault: Callable[[str, str, str], None] | None = None
    ) -> None:
        self.seq = first_seq  # the last sequence number handed out
        self._on_fault = on_fault
        self.writes: list[LedgerWrite] = []
        self.faults: dict[str, dict[str, dict[str, int]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(int))
        )

    def commit(
        self,
        service: str,
        tenant: str,
        resource: str,
        record_id: str,
        *,
        idempotency_key: str | None,
        lookup_value: Any,
        body_sha256: str,
    ) -> LedgerWrite:
        """Record a committed write (outcome ``ok`` until :meth:`mark_failed_after_commit`)."""
        self.seq += 1
        entry = LedgerWrite(
            service, tenant, resource, record_id, idempotency_key, lookup_value, body_sha256,
            time.time(), "ok", self.seq,
        )  # fmt: skip
        self.writes.append(entry)
        return entry

    def mark_failed_after_commit(self, entry: LedgerWrite) -> None:
        """The client of ``entry`` never saw a response: a commit-then-fail."""
        # Entries are immutable; replace the last matching one (it is almost always the tail).
        for i in range(len(self.writes) - 1, -1, -1):
            if self.writes[i] is entry:
                self.writes[i] = dataclasses.replace(entry, outcome="commit_then_fail")
                return

    def fault(self, service: str, tenant: str, kind: str) -> None:
        """Count one injected fault."""
        self.faults[service][tenant][kind] += 1
        if self._on_fault is not None:
            self._on_fault(service, tenant, kind)

    def as_json(self, service: str | None = None, since_seq: int = 0) -> dict[str, Any]:
        """``writes`` and ``faults`` of ``GET /admin/ledger`` (the farm adds drift events)."""
        writes = [
            w.as_json()
            for w in self.writes
            if (service is None or w.service == service) and w.seq > since_seq
        ]
        faults = {
            s: {t: dict(kinds) for t, kinds in tenants.items()}
            for s, tenants in self.faults.items()
            if service is None or s == service
        }
        return {"writes": writes, "faults": faults}
