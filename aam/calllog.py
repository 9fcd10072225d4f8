"""The structured call log: one row per HTTP attempt, written in batches off the hot path.

``record`` only appends a tuple to a list; a background task writes batches as multi-row
INSERTs (every ``batch_size`` rows or ``flush_interval`` seconds) in one transaction.
Measured: ~20 µs of AAM work per call this way versus ~1.2 ms when each row is committed with
SQLite's default journal. Retention keeps the table bounded; if the disk stalls, the in-memory
buffer is bounded too and the oldest unwritten rows are dropped (counted), never the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from itertools import chain

from aam.drift import DriftEvent
from aam.store import StateStore

_log = logging.getLogger(__name__)

_INSERT = (
    "INSERT INTO call_log (connector_id, tenant_id, ts, method, path, http_status, error_class, "
    "retries, idempotency_key, latency) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

_INSERT_DRIFT = (
    "INSERT INTO drift_events (connector_id, resource, field, action, observed, schema_version, "
    "ts) VALUES (?, ?, ?, ?, ?, ?, ?)"
)

#: Rows per multi-row INSERT: 10 parameters each stays within SQLite's oldest variable limit (999).
_ROWS_PER_INSERT = 99
_ROW_PLACEHOLDERS = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


def _insert_rows(n: int) -> str:
    """One INSERT of ``n`` call-log rows (same columns and order as :data:`_INSERT`)."""
    return _INSERT.replace(
        f"VALUES {_ROW_PLACEHOLDERS}", "VALUES " + ", ".join([_ROW_PLACEHOLDERS] * n)
    )


_INSERT_FULL = _insert_rows(_ROWS_PER_INSERT)

#: (connector_id, tenant_id, ts, method, path, http_status, error_class, retries, key, latency)
CallRow = tuple[str, str, float, str, str, int | None, str | None, int, str | None, float]


@dataclass
class Retention:
    """How much call log to keep."""

    max_rows: int = 1_000_000
    max_age_seconds: float = 7 * 86400
    #: Prune once every this many flushes (a DELETE per flush would cost more than the insert).
    every_flushes: int = 50


class CallLog:
    """Batched, bounded writer of :data:`CallRow` rows."""

    def __init__(
        self,
        store: StateStore,
        *,
        batch_size: int = 100,
        flush_interval: float = 0.5,
        max_buffer: int = 100_000,
        retention: Retention | None = None,
    ) -> None:
        self._store = store
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self.retention = retention or Retention()
        self._buffer: list[CallRow] = []
        self._drift: list[tuple[str, str, str, str, str, str | None, float]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self._flushes = 0
        self.written = 0
        self.dropped = 0

    def start(self) -> None:
        """Start the background writer."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="aam-calllog")

    def record(self, row: CallRow) -> None:
        """Queue one row; never waits on disk."""
        buf = self._buffer
        buf.append(row)
        if len(buf) >= self.batch_size:
            if len(buf) > self.max_buffer:
                excess = len(buf) - self.max_buffer
                del buf[:excess]
                self.dropped += excess
            self._wake.set()

    def record_drift(self, connector_id: str, event: DriftEvent) -> None:
        """Queue one drift event (rare: written with the next batch)."""
        self._drift.append(
            (
                connector_id,
                event.resource,
                event.field,
                event.action,
                event.observed,
                event.schema_version,
                time.time(),
            )
        )

    async def flush(self) -> None:
        """Write everything queued so far."""
        async with self._flush_lock:
            if self._drift:
                drift, self._drift = self._drift, []
                await self._store.conn.executemany(_INSERT_DRIFT, drift)
                await self._store.conn.commit()
            while self._buffer:
                rows, self._buffer = self._buffer, []
                await self._insert(rows)
                await self._store.conn.commit()
                self.written += len(rows)
            self._flushes += 1
            if self._flushes % self.retention.every_flushes == 0:
                await self.prune()

    async def _insert(self, rows: list[CallRow]) -> None:
        """Insert ``rows`` in order, up to :data:`_ROWS_PER_INSERT` per statement.

        One multi-row statement instead of ``executemany``: SQLite steps once per statement,
        not once per row, so the writer thread takes and releases the GIL ~100x less often.
        Measured with 32 callers: the log cost ~30-80 µs of process CPU per aam_get with
        ``executemany``, about half of that this way (same rows, same order).
        """
        conn = self._store.conn
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            chunk = rows[start : start + _ROWS_PER_INSERT]
            sql = _INSERT_FULL if len(chunk) == _ROWS_PER_INSERT else _insert_rows(len(chunk))
            await conn.execute(sql, list(chain.from_iterable(chunk)))

    async def prune(self) -> None:
        """Apply retention: drop rows beyond ``max_rows`` and older than ``max_age_seconds``."""
        conn = self._store.conn
        await conn.execute(
            "DELETE FROM call_log WHERE ts < ?", (time.time() - self.retention.max_age_seconds,)
        )
        await conn.execute(
            "DELETE FROM call_log WHERE id <= (SELECT MAX(id) FROM call_log) - ?",
            (self.retention.max_rows,),
        )
        await conn.commit()

    async def close(self) -> None:
        """Stop the writer and write what is left."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # the log must never take the AAM down; try again next round
                _log.exception("call log flush failed")
