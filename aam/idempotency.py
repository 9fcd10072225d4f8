"""Idempotency keys for writes: derivation, request hashing and the local key store.

Every POST gets a key: derived deterministically from (connector, path, operation id) when the
caller names its operation, random otherwise. The store remembers, per key, the hash of the
request body and the final result, so a repeated call returns the stored result without touching
the API and a reused key with a different body is refused. A ``pending`` row written *before* the
first send is the evidence, after a crash, that the request may have reached the server.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from aam.store import StateStore


def derive_key(connector_id: str, path: str, operation_id: str) -> str:
    """The key for a named operation: the same inputs always give the same key."""
    digest = hashlib.sha256(f"{connector_id}\n{path}\n{operation_id}".encode()).hexdigest()
    return f"op-{digest[:40]}"


def random_key() -> str:
    """A fresh key for an anonymous write."""
    return f"rk-{uuid.uuid4().hex}"


def request_hash(body: Any) -> str:
    """Stable hash of a JSON body (keys sorted, so dict order does not matter)."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class KeyRecord:
    """What the store knows about one key."""

    key: str
    connector_id: str
    path: str
    request_hash: str
    status: str  # pending | done | failed
    response: Any


class IdempotencyStore:
    """SQLite-backed key store with an in-process lock per key."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiters: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Serialise work on one key inside this process (a second caller waits, then finds
        the first one's result)."""
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        self._waiters[key] = self._waiters.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._waiters[key] -= 1
            if self._waiters[key] == 0:
                del self._waiters[key]
                del self._locks[key]

    async def get(self, key: str) -> KeyRecord | None:
        """The stored record for ``key``, if any."""
        async with self._store.conn.execute(
            "SELECT key, connector_id, path, request_hash, status, response "
            "FROM idempotency_keys WHERE key = ?",
            (key,),
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        response = orjson.loads(row[5]) if row[5] is not None else None
        return KeyRecord(row[0], row[1], row[2], row[3], row[4], response)

    async def begin(self, key: str, connector_id: str, path: str, req_hash: str) -> None:
        """Write the ``pending`` row before the first send (committed: survives a crash)."""
        now = time.time()
        await self._store.conn.execute(
            "INSERT INTO idempotency_keys "
            "(key, connector_id, path, request_hash, status, response, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, 'pending', NULL, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET status = 'pending', updated_at = excluded.updated_at",
            (key, connector_id, path, req_hash, now, now),
        )
        await self._store.conn.commit()

    async def complete(self, key: str, response: Any) -> None:
        """Store the final result."""
        await self._store.conn.execute(
            "UPDATE idempotency_keys SET status = 'done', response = ?, updated_at = ? "
            "WHERE key = ?",
            (orjson.dumps(response).decode(), time.time(), key),
        )
        await self._store.conn.commit()

    async def fail(self, key: str) -> None:
        """Mark the key failed: a later call with it tries again (and looks up first)."""
        await self._store.conn.execute(
            "UPDATE idempotency_keys SET status = 'failed', updated_at = ? WHERE key = ?",
            (time.time(), key),
        )
        await self._store.conn.commit()

    async def prune(self, older_than_seconds: float) -> int:
        """Forget finished keys older than the retention (the server forgets them too)."""
        cur = await self._store.conn.execute(
            "DELETE FROM idempotency_keys WHERE status = 'done' AND updated_at < ?",
            (time.time() - older_than_seconds,),
        )
        await self._store.conn.commit()
        return cur.rowcount
