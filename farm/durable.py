"""Ground truth across restarts: what goes to the farm's SQLite file, and how it comes back.

:func:`persist_write` queues a committed write (the ledger entry, the stored record and the
response an idempotent replay answers with); :func:`restore` puts a previous process's epoch back
in memory at start-up: the ledger (same sequence numbers), the created records (same ids), the
idempotency keys still within their TTL, and the fault counts. Counters in ``/admin/status``,
tokens, buckets, leases, the drift clock and living data (updates, other users' records) are per
process and start afresh.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from farm.idempotency import StoredResponse
from farm.ledger import LedgerWrite

#: Types of modules that import this one (``farm.pipeline``, ``farm.state``, ...): named, not
#: imported, so the package has no import cycle (tests/test_layering.py counts type-only ones).
Commit = Any
Reply = Any
Farm = Any
Restored = Any


def persist_write(farm: Farm, commit: Commit, reply: Reply, outcome: str) -> None:
    """Queue one committed write for the store (no I/O here)."""
    entry = commit.entry
    assert entry is not None
    farm.store.put(
        "writes",
        (
            entry.seq,
            farm.epoch,
            entry.service,
            entry.tenant,
            entry.resource,
            entry.record_id,
            entry.idempotency_key,
            None if entry.lookup_value is None else orjson.dumps(entry.lookup_value).decode(),
            entry.body_sha256,
            entry.committed_at,
            outcome,
            orjson.dumps(commit.record).decode(),
            reply.status,
            reply.body,
        ),
    )


def restore(farm: Farm, restored: Restored) -> None:
    """Load the current epoch a previous process of this farm left in its store."""
    for service, tenant, kind, n in restored.faults:
        farm.ledger.faults[service][tenant][kind] += n
    now = time.time()
    for row in restored.writes:
        lookup = row["lookup_value"]
        entry = LedgerWrite(
            row["service"],
            row["tenant"],
            row["resource"],
            row["record_id"],
            row["idempotency_key"],
            None if lookup is None else orjson.loads(lookup),
            row["body_sha256"],
            row["committed_at"],
            row["outcome"],
            row["seq"],
        )
        farm.ledger.writes.append(entry)
        spec = farm.specs.get(entry.service)
        if spec is None or entry.tenant not in {t.id for t in spec.tenants}:
            continue  # the service or tenant left the configs: its writes stay in the ledger only
        if entry.resource not in {r.name for r in spec.resources}:
            continue
        farm.records.table(entry.service, entry.tenant, entry.resource).restore(
            orjson.loads(row["record"])
        )
        if entry.idempotency_key is not None and spec.idempotency.supported:
            left = spec.idempotency.key_ttl_seconds - (now - entry.committed_at)
            farm.idempotency.restore(
                (entry.service, entry.tenant, entry.idempotency_key),
                entry.body_sha256,
                StoredResponse(row["status"], bytes(row["response"])),
                left,
            )
