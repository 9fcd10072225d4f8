"""The AAM's SQLite file: one aiosqlite connection, WAL, one schema.

WAL with ``synchronous=NORMAL`` makes every committed transaction survive a process crash and
keeps commits cheap (no fsync per commit); readers never block the writer. The idempotency keys,
the DLQ, the call log and drift events share the file so one backup holds a run's whole story.
"""

from __future__ import annotations

import os
from pathlib import Path

import aiosqlite

SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    connector_id TEXT NOT NULL,
    path TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status TEXT NOT NULL,            -- pending | done | failed
    response TEXT,                   -- JSON of the final result when done
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS idempotency_keys_updated ON idempotency_keys(updated_at);
CREATE TABLE IF NOT EXISTS dlq (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connector_id TEXT NOT NULL,
    path TEXT NOT NULL,
    payload TEXT NOT NULL,
    idempotency_key TEXT,
    error_class TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    status TEXT NOT NULL,            -- pending | replaying | replayed | failed
    replay_count INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS dlq_status ON dlq(status);
CREATE TABLE IF NOT EXISTS call_log (
    id INTEGER PRIMARY KEY,
    connector_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    ts REAL NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    http_status INTEGER,
    error_class TEXT,
    retries INTEGER NOT NULL,
    idempotency_key TEXT,
    latency REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS call_log_ts ON call_log(ts);
CREATE TABLE IF NOT EXISTS drift_events (
    id INTEGER PRIMARY KEY,
    connector_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    field TEXT NOT NULL,
    action TEXT NOT NULL,
    observed TEXT NOT NULL,
    schema_version TEXT,
    ts REAL NOT NULL
);
"""


class StateStore:
    """The open SQLite database of one Mesh."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    async def open(cls, path: Path) -> StateStore:
        """Open (creating if needed) the database at ``path`` in WAL mode. It holds request
        bodies (DLQ, write intents, stored results): the file is 0600 in a 0700 folder (SQLite
        gives its -wal and -shm files the same mode)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
        conn = await aiosqlite.connect(path)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA busy_timeout=5000")
        await conn.executescript(SCHEMA)
        await conn.commit()
        return cls(conn, path)

    async def close(self) -> None:
        """Close the connection (the WAL is checkpointed by SQLite)."""
        await self.conn.close()
