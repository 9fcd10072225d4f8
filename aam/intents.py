"""Write intents: the recovery point of every idempotent write (Stripe-style).

Before a write's first attempt its intent — connector, path, body, idempotency key, lookup value
and the process that owns it — is committed to ``write_intents`` in the AAM's SQLite file. When
the write ends, the intent is closed (``done``, or ``parked`` once the DLQ holds it). If the
process dies in between, the intent stays ``pending`` with an owner that no longer runs. The next
:meth:`WriteIntents.park_orphans` (every ``Mesh.open``: ``gauntlet dlq replay``, a restarted
backend, the next run on the same state) moves such intents to the DLQ with their key, and the
DLQ replay resolves each one exactly once: the AAM's key store still says ``pending`` for the
key, so the connector looks the record up by its lookup value before sending (services without
server-side idempotency), or re-sends with the same ``Idempotency-Key`` (the server replays its
stored answer instead of committing twice).

An intent whose owner still runs (another process on the same state dir, e.g. ``gauntlet dlq
list`` next to a live run) is never touched: parking a write that is still in flight could race
with it.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any

import orjson

from aam.errors import NetworkError
from aam.store import StateStore

log = logging.getLogger("aam.intents")

PENDING = "pending"
DONE = "done"
PARKED = "parked"
FAILED = "failed"

SCHEMA = """
CREATE TABLE IF NOT EXISTS write_intents (
    key TEXT PRIMARY KEY,
    connector_id TEXT NOT NULL,
    path TEXT NOT NULL,
    body TEXT NOT NULL,              -- JSON, the logical body (lookup value included)
    lookup_value TEXT,               -- JSON
    owner TEXT NOT NULL,             -- host:pid:token of the Mesh that issued it
    status TEXT NOT NULL,            -- pending | done | parked | failed
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS write_intents_status ON write_intents(status);
"""

#: Why a recovered write is in the DLQ (its outcome was unknown when its process died).
INTERRUPTED_REASON = "interrupted"


#: Owner ids of the intent tables open in this process (one per open Mesh).
_OPEN_OWNERS: set[str] = set()


def new_owner() -> str:
    """A fresh owner id: ``host:pid:token`` (one per open Mesh)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def owner_alive(owner: str) -> bool:
    """Whether the Mesh that wrote an intent may still be running (another host: assume so;
    its state dir is not ours to recover)."""
    host, _, rest = owner.partition(":")
    pid_text, _, _token = rest.partition(":")
    if host != socket.gethostname():
        return True
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid():
        return owner in _OPEN_OWNERS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class WriteIntent:
    """One write's recovery point."""

    key: str
    connector_id: str
    path: str
    body: dict[str, Any]
    lookup_value: Any
    owner: str
    status: str
    created_at: float


class WriteIntents:
    """The ``write_intents`` table of one AAM state file."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._owner = new_owner()
        _OPEN_OWNERS.add(self._owner)

    async def create_table(self) -> None:
        await self._store.conn.executescript(SCHEMA)
        await self._store.conn.commit()

    def release(self) -> None:
        """This Mesh is closing: its pending intents become orphans for the next one."""
        _OPEN_OWNERS.discard(self._owner)

    async def record(
        self, key: str, connector_id: str, path: str, body: dict[str, Any], lookup_value: Any
    ) -> None:
        """Commit the intent before the first attempt (a repeat of the key re-opens it)."""
        now = time.time()
        await self._store.conn.execute(
            "INSERT INTO write_intents (key, connector_id, path, body, lookup_value, owner, "
            "status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET status = 'pending', owner = excluded.owner, "
            "updated_at = excluded.updated_at",
            (
                key,
                connector_id,
                path,
                orjson.dumps(body).decode(),
                None if lookup_value is None else orjson.dumps(lookup_value).decode(),
                self._owner,
                now,
                now,
            ),
        )
        await self._store.conn.commit()

    async def close(self, key: str, status: str) -> None:
        """The write ended: ``done`` (committed and confirmed), ``parked`` (the DLQ holds it) or
        ``failed`` (refused for good, nothing to recover)."""
        await self._store.conn.execute(
            "UPDATE write_intents SET status = ?, updated_at = ? WHERE key = ?",
            (status, time.time(), key),
        )
        await self._store.conn.commit()

    async def list(self, status: str | None = None) -> list[WriteIntent]:
        """Intents, oldest first."""
        sql = (
            "SELECT key, connector_id, path, body, lookup_value, owner, status, created_at "
            "FROM write_intents"
        )
        args: tuple[Any, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            args = (status,)
        async with self._store.conn.execute(sql + " ORDER BY created_at, key", args) as cur:
            rows = await cur.fetchall()
        return [
            WriteIntent(
                r[0],
                r[1],
                r[2],
                orjson.loads(r[3]),
                None if r[4] is None else orjson.loads(r[4]),
                r[5],
                r[6],
                r[7],
            )
            for r in rows
        ]

    async def park_orphans(self, dlq: Any) -> int:
        """Move every pending intent whose process is gone to the DLQ (same key); returns how
        many. An intent already in the DLQ under its key is only closed."""
        orphans = [i for i in await self.list(PENDING) if not owner_alive(i.owner)]
        if not orphans:
            return 0
        queued = {
            e.idempotency_key
            for e in await dlq.list()
            if e.status in ("pending", "replaying") and e.idempotency_key is not None
        }
        for intent in orphans:
            if intent.key not in queued:
                error = NetworkError(
                    f"the process ({intent.owner}) stopped before this write's outcome was known",
                    connector_id=intent.connector_id,
                    reason=INTERRUPTED_REASON,
                )
                await dlq.add(intent.connector_id, intent.path, intent.body, intent.key, error)
            await self.close(intent.key, PARKED)
        log.warning("parked %d interrupted write(s) in the DLQ for replay", len(orphans))
        return len(orphans)
