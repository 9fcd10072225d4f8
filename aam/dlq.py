"""The dead-letter queue: writes that failed for good, kept for replay.

Each entry holds what is needed to send the write again *with the same idempotency key*:
connector, path, payload, key, plus why it failed (error class, attempts, last error).
Replay marks an entry ``replaying`` (committed) before sending and ``replayed`` / ``failed``
after. If the process dies in between, the entry is still ``replaying`` on disk and the next
replay takes it again: nothing is lost, and re-sending with the same key cannot double the effect
(the server dedupes by key, or the connector looks the record up by its lookup field first).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from aam.errors import AamError
from aam.store import StateStore

PENDING = "pending"
REPLAYING = "replaying"
REPLAYED = "replayed"
FAILED = "failed"


@dataclass(frozen=True)
class DlqEntry:
    """One dead-lettered write."""

    id: int
    connector_id: str
    path: str
    payload: Any
    idempotency_key: str | None
    error_class: str
    attempts: int
    last_error: str
    status: str
    replay_count: int
    created_at: float


@dataclass
class ReplayReport:
    """What one replay run did."""

    replayed: int = 0
    failed: int = 0
    skipped: int = 0
    errors: dict[str, int] = field(default_factory=dict)


#: Sends one entry again; raises an ``AamError`` leaf on failure.
ReplaySender = Callable[[DlqEntry], Awaitable[Any]]

_COLUMNS = (
    "id, connector_id, path, payload, idempotency_key, error_class, attempts, last_error, "
    "status, replay_count, created_at"
)


def _entry(row: Any) -> DlqEntry:
    return DlqEntry(
        id=row[0],
        connector_id=row[1],
        path=row[2],
        payload=orjson.loads(row[3]),
        idempotency_key=row[4],
        error_class=row[5],
        attempts=row[6],
        last_error=row[7],
        status=row[8],
        replay_count=row[9],
        created_at=row[10],
    )


class DeadLetterQueue:
    """SQLite-backed DLQ; ``sender`` is how a replayed entry goes out (the Mesh's connectors)."""

    def __init__(
        self,
        store: StateStore,
        sender: ReplaySender | None = None,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._sender = sender
        self._on_change = on_change  # told the connector id whose depth changed

    async def add(
        self,
        connector_id: str,
        path: str,
        payload: Any,
        idempotency_key: str | None,
        error: AamError,
    ) -> int:
        """Dead-letter a write; returns the entry id."""
        now = time.time()
        cur = await self._store.conn.execute(
            "INSERT INTO dlq (connector_id, path, payload, idempotency_key, error_class, "
            "attempts, last_error, status, replay_count, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
            (
                connector_id,
                path,
                orjson.dumps(payload).decode(),
                idempotency_key,
                error.error_class,
                error.attempts,
                str(error)[:500],
                PENDING,
                now,
                now,
            ),
        )
        await self._store.conn.commit()
        if self._on_change is not None:
            self._on_change(connector_id)
        return int(cur.lastrowid or 0)

    async def list(self, status: str | None = None) -> list[DlqEntry]:
        """Entries, oldest first, optionally only those with ``status``."""
        sql = f"SELECT {_COLUMNS} FROM dlq"
        args: tuple[Any, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            args = (status,)
        async with self._store.conn.execute(sql + " ORDER BY id", args) as cur:
            rows = await cur.fetchall()
        return [_entry(r) for r in rows]

    async def depth(self, connector_id: str | None = None) -> int:
        """Entries still waiting (pending or interrupted mid-replay)."""
        sql = "SELECT COUNT(*) FROM dlq WHERE status IN ('pending', 'replaying')"
        args: tuple[Any, ...] = ()
        if connector_id is not None:
            sql += " AND connector_id = ?"
            args = (connector_id,)
        async with self._store.conn.execute(sql, args) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def replay(
        self,
        limit: int | None = None,
        *,
        connector_ids: set[str] | None = None,
        include_failed: bool = False,
    ) -> ReplayReport:
        """Send waiting entries again (same key); mark each ``replayed`` or ``failed``.

        Entries interrupted mid-replay (``replaying`` on disk) are taken again; ``failed`` ones
        only with ``include_failed``. An entry refused by an open circuit was not attempted and
        stays ``pending``.
        """
        if self._sender is None:
            raise RuntimeError("this DLQ has no sender; open it through a Mesh to replay")
        report = ReplayReport()
        wanted = (PENDING, REPLAYING, FAILED) if include_failed else (PENDING, REPLAYING)
        waiting = [e for e in await self.list() if e.status in wanted]
        for entry in waiting[:limit] if limit is not None else waiting:
            if connector_ids is not None and entry.connector_id not in connector_ids:
                report.skipped += 1
                continue
            await self._set_status(entry.id, REPLAYING, bump=True)
            try:
                await self._sender(entry)
            except AamError as exc:
                if exc.reason == "circuit_open":
                    await self._set_status(entry.id, PENDING)
                    report.skipped += 1
                    continue
                await self._set_status(entry.id, FAILED, error=exc)
                report.failed += 1
                report.errors[exc.error_class] = report.errors.get(exc.error_class, 0) + 1
            except KeyError:
                # No connector for this entry in this Mesh: leave it waiting for one that has.
                await self._set_status(entry.id, PENDING)
                report.skipped += 1
                continue
            else:
                await self._set_status(entry.id, REPLAYED)
                report.replayed += 1
            if self._on_change is not None:
                self._on_change(entry.connector_id)
        return report

    async def prune(self, older_than_seconds: float) -> int:
        """Forget entries replayed longer ago than the retention (pending ones are never lost)."""
        cur = await self._store.conn.execute(
            "DELETE FROM dlq WHERE status = 'replayed' AND updated_at < ?",
            (time.time() - older_than_seconds,),
        )
        await self._store.conn.commit()
        return cur.rowcount

    async def _set_status(
        self, entry_id: int, status: str, *, bump: bool = False, error: AamError | None = None
    ) -> None:
        sets = "status = ?, updated_at = ?"
        args: list[Any] = [status, time.time()]
        if bump:
            sets += ", replay_count = replay_count + 1"
        if error is not None:
            sets += ", error_class = ?, last_error = ?, attempts = attempts + ?"
            args += [error.error_class, str(error)[:500], error.attempts]
        args.append(entry_id)
        await self._store.conn.execute(f"UPDATE dlq SET {sets} WHERE id = ?", args)
        await self._store.conn.commit()
