"""The farm store's writer process: the one process that writes ``farm.sqlite3``.

:class:`farm.store.FarmStore` runs this file as ``python -I -S store_writer.py <db path>``
(standard library only, no farm import: it starts in a few milliseconds). It takes an exclusive
``flock`` on the database file — one writer per state dir, so a farm restarted after a
``kill -9`` waits until the writer of the process it replaces has committed what it received —
creates the schema, answers that it is ready, then applies each batch it reads on stdin in one
transaction and acknowledges it on stdout. SQLite's CPU work thus runs outside the farm's
process and never holds the serving process's GIL. At end of input (the farm closed the pipe, or
died, ``kill -9`` included) it has committed every batch it received whole, and exits.

Frames both ways are a 4-byte big-endian length and ``marshal`` data (the same interpreter runs
both ends). Farm to writer: ``(generation, [(table, row), ...])``. Writer to farm:
``(generation, error)``, error ``None`` or the SQLite error text (a full disk: the batch is rolled
back and the farm logs it); generation 0 is the start-up answer.
"""

from __future__ import annotations

import fcntl
import marshal
import os
import signal
import sqlite3
import struct
import sys
import time
from typing import Any, BinaryIO

#: Rows per multi-row INSERT statement (SQLite's default limit is 32,766 variables).
ROWS_PER_STATEMENT = 100
#: The attempt log keeps the newest this many rows (~250 bytes each on disk); older ones are
#: pruned and ``GET /admin/attempts`` says where the kept log starts (``oldest_seq``).
MAX_ATTEMPTS = 1_000_000
PRUNE_EVERY_ROWS = 50_000
#: Longest query string kept per attempt (the rest is cut; the row says so with a trailing "…").
MAX_QUERY_CHARS = 2000
MAX_MARKER_CHARS = 255
#: How long a new writer waits for the previous one of the same file to finish.
LOCK_WAIT_SECONDS = 30.0
FRAME = struct.Struct(">I")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS writes (
    seq INTEGER PRIMARY KEY,         -- ledger sequence number, never reused (not even by a reset)
    epoch INTEGER NOT NULL,
    service TEXT NOT NULL,
    tenant TEXT NOT NULL,
    resource TEXT NOT NULL,
    record_id TEXT NOT NULL,
    idempotency_key TEXT,
    lookup_value TEXT,               -- JSON
    body_sha256 TEXT NOT NULL,
    committed_at REAL NOT NULL,
    outcome TEXT NOT NULL,           -- ok | commit_then_fail
    record TEXT NOT NULL,            -- JSON, canonical (version-1) shape
    status INTEGER NOT NULL,         -- what an idempotent replay answers with
    response BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS faults (
    epoch INTEGER NOT NULL,
    service TEXT NOT NULL,
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (epoch, service, tenant, kind)
);
CREATE TABLE IF NOT EXISTS attempts (
    seq INTEGER PRIMARY KEY,
    epoch INTEGER NOT NULL,
    ts REAL NOT NULL,
    service TEXT NOT NULL,
    tenant TEXT,
    credential TEXT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    query TEXT NOT NULL,
    status INTEGER,
    transport_fault TEXT,
    fault TEXT,
    committed INTEGER NOT NULL,
    ledger_seq INTEGER,
    retry_after TEXT,
    idempotency_key TEXT,
    lookup_value TEXT,
    duration REAL,                   -- seconds from arrival to the answer (or the cut)
    refusal TEXT,                    -- rate_limit | auth:<reason> | NULL (farm/README.md)
    remaining INTEGER                -- quota left, as the rate-limit headers said (or NULL)
);
CREATE INDEX IF NOT EXISTS attempts_service ON attempts(service, seq);
"""

WRITE_COLUMNS = (
    "seq, epoch, service, tenant, resource, record_id, idempotency_key, lookup_value, "
    "body_sha256, committed_at, outcome, record, status, response"
)
ATTEMPT_COLUMNS = (
    "seq, epoch, ts, service, tenant, credential, method, path, query, status, transport_fault, "
    "fault, committed, ledger_seq, retry_after, idempotency_key, lookup_value, duration, refusal, "
    "remaining"
)

Batch = list[tuple[str, tuple[Any, ...]]]


def connect(path: str) -> sqlite3.Connection:
    """A connection in WAL mode (readers never block the writer), autocommit off by hand."""
    db = sqlite3.connect(path, timeout=10, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def create_schema(db: sqlite3.Connection) -> None:
    """The tables (and the columns a state dir from before they existed lacks)."""
    db.executescript(SCHEMA)
    columns = {r[1] for r in db.execute("PRAGMA table_info(attempts)")}
    for column, kind in (("duration", "REAL"), ("refusal", "TEXT"), ("remaining", "INTEGER")):
        if column not in columns:
            db.execute(f"ALTER TABLE attempts ADD COLUMN {column} {kind}")


def apply_batch(db: sqlite3.Connection, batch: Batch) -> None:
    """Write ``batch`` (rows and ops in queue order) in one transaction."""
    db.execute("BEGIN")
    try:
        i = 0
        while i < len(batch):
            table = batch[i][0]
            j = i
            while j < len(batch) and batch[j][0] == table and j - i < ROWS_PER_STATEMENT:
                j += 1
            _apply_group(db, table, [r for _, r in batch[i:j]])
            i = j
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def attempt_row(queued: tuple[Any, ...]) -> tuple[Any, ...]:
    """An attempt as ``farm.attempts`` queues it (query, Retry-After and Idempotency-Key as the
    request's bytes, the duration unrounded) -> the stored row: text decoded as Latin-1 (as HTTP
    headers are), the query cut at ``MAX_QUERY_CHARS`` and the key at ``MAX_MARKER_CHARS``, the
    duration rounded to the microsecond."""
    row = list(queued)
    query = row[8].decode("latin-1")
    row[8] = query if len(query) <= MAX_QUERY_CHARS else query[:MAX_QUERY_CHARS] + "…"
    if row[14] is not None:
        row[14] = row[14].decode("latin-1")
    if row[15] is not None:
        row[15] = row[15].decode("latin-1")[:MAX_MARKER_CHARS]
    if row[17] is not None:
        row[17] = round(row[17], 6)
    return tuple(row)


def _apply_group(db: sqlite3.Connection, table: str, rows: list[tuple[Any, ...]]) -> None:
    if table == "attempts":
        rows = [attempt_row(r) for r in rows]
    if table in ("writes", "attempts"):
        width = len(rows[0])
        marks = "(" + ", ".join("?" * width) + ")"
        columns = WRITE_COLUMNS if table == "writes" else ATTEMPT_COLUMNS
        flat = [v for r in rows for v in r]
        db.execute(
            f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([marks] * len(rows)), flat
        )
        seq = max(r[0] for r in rows)
        if table == "attempts" and seq // PRUNE_EVERY_ROWS != (seq - len(rows)) // PRUNE_EVERY_ROWS:
            db.execute("DELETE FROM attempts WHERE seq <= ?", (seq - MAX_ATTEMPTS,))
        key = "ledger_seq" if table == "writes" else "attempt_seq"
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
            "value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
            (key, str(seq)),
        )
    elif table == "fault":
        db.executemany(
            "INSERT INTO faults (epoch, service, tenant, kind, n) VALUES (?, ?, ?, ?, 1) "
            "ON CONFLICT DO UPDATE SET n = n + 1",
            rows,
        )
    elif table == "outcome":
        db.executemany("UPDATE writes SET outcome = ? WHERE seq = ?", rows)
    elif table == "epoch":
        for epoch, seed in rows:
            db.execute("DELETE FROM writes WHERE epoch < ?", (epoch,))
            db.execute("DELETE FROM faults WHERE epoch < ?", (epoch,))
            db.execute("DELETE FROM attempts WHERE epoch < ?", (epoch,))
            db.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [("epoch", str(epoch)), ("seed", str(seed))],
            )
    else:  # pragma: no cover - a programming error
        raise ValueError(f"unknown store table {table!r}")


def write_frame(stream: BinaryIO, value: Any) -> None:
    """One length-prefixed ``marshal`` frame, flushed."""
    data = marshal.dumps(value)
    stream.write(FRAME.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: BinaryIO) -> Any:
    """The next frame; ``EOFError`` at end of input (or a frame cut short by a dead sender)."""
    head = stream.read(FRAME.size)
    if len(head) < FRAME.size:
        raise EOFError("end of input")
    (size,) = FRAME.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("frame cut short")
    return marshal.loads(data)


def _lock(path: str) -> int:
    """An exclusive ``flock`` on the database file, waiting (bounded) for a previous writer."""
    fd = os.open(path, os.O_RDWR)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise OSError(
                    f"another farm process is still writing it (waited {LOCK_WAIT_SECONDS:g} s)"
                ) from None
            time.sleep(0.02)


def main(path: str) -> int:
    # The farm decides when the writer ends (by closing the pipe): a Ctrl-C or a SIGTERM sent to
    # the whole process group must not cut off the farm's last batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    feed, answers = sys.stdin.buffer, sys.stdout.buffer
    try:
        _lock(path)
        db = connect(path)
        create_schema(db)
    except (OSError, sqlite3.Error) as exc:
        write_frame(answers, (0, getattr(exc, "strerror", None) or str(exc)))
        return 2
    write_frame(answers, (0, None))
    while True:
        try:
            generation, batch = read_frame(feed)
        except EOFError:
            break
        error = None
        try:
            apply_batch(db, batch)
        except sqlite3.Error as exc:  # a full disk: the farm says it once and keeps serving
            error = str(exc)
        try:
            write_frame(answers, (generation, error))
        except BrokenPipeError:
            break  # the farm is gone; what it sent is committed
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
