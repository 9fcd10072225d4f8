"""The farm's durable ground truth: ``<state dir>/farm.sqlite3`` (SQLite, WAL).

What survives a restart: the committed writes (with the stored record and the response an
idempotent replay answers with), the fault counts, the attempt log, the epoch (how many resets)
and the seed. The request path never touches the disk: it appends a row to an in-memory batch
(:meth:`FarmStore.put`), and a writer thread drains the batch every ``FLUSH_SECONDS`` in one
transaction. Admin reads call :meth:`FarmStore.flush` first, so they see every row answered so
far. What a ``kill -9`` can lose is the last unflushed batch (at most ``FLUSH_SECONDS`` of
traffic); a runner never trusts such a window anyway, because the boot id changes with the
process and the runner's end-of-run check turns the run into ``ERROR``.

The file and its folder are private (0600 in 0700): it holds request bodies.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("farm.store")

FILE_NAME = "farm.sqlite3"
FLUSH_SECONDS = 0.05
#: Rows per multi-row INSERT statement (SQLite's default limit is 32,766 variables).
ROWS_PER_STATEMENT = 100
#: The attempt log keeps the newest this many rows (~250 bytes each on disk); older ones are
#: pruned and ``GET /admin/attempts`` says where the kept log starts (``oldest_seq``).
MAX_ATTEMPTS = 1_000_000
PRUNE_EVERY_ROWS = 50_000

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
    duration REAL                    -- seconds from arrival to the answer (or the cut)
);
CREATE INDEX IF NOT EXISTS attempts_service ON attempts(service, seq);
"""

WRITE_COLUMNS = (
    "seq, epoch, service, tenant, resource, record_id, idempotency_key, lookup_value, "
    "body_sha256, committed_at, outcome, record, status, response"
)
ATTEMPT_COLUMNS = (
    "seq, epoch, ts, service, tenant, credential, method, path, query, status, transport_fault, "
    "fault, committed, ledger_seq, retry_after, idempotency_key, lookup_value, duration"
)


class StateDirError(Exception):
    """The state dir cannot hold the farm's files (one sentence: where and why)."""


#: Bytes written (and removed) to prove a state dir takes writes: a full disk fails here.
PROBE_BYTES = 64 * 1024


def private_dir(path: Path, *, private: bool = True) -> None:
    """Create ``path`` (and parents), make it 0700 (unless ``private`` is false: a folder the
    user named, whose own files are made private) and prove it takes a write (a read-only or
    full file system fails here); :class:`StateDirError` in one sentence if it cannot."""
    probe = path / f".write-probe-{os.getpid()}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        if private:
            os.chmod(path, 0o700)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"\0" * PROBE_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise StateDirError(f"state dir {path}: cannot write there ({reason})") from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


@dataclass
class Restored:
    """What a previous process left: the epoch, seed, writes and fault counts of that epoch."""

    epoch: int
    seed: int | None
    ledger_seq: int
    attempt_seq: int
    writes: list[sqlite3.Row]
    faults: list[tuple[str, str, str, int]]


class FarmStore:
    """One farm's SQLite file and the writer thread that fills it."""

    def __init__(self, state_dir: Path) -> None:
        private_dir(state_dir)
        self.path = state_dir / FILE_NAME
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            os.chmod(self.path, 0o600)
            self._db = self._connect()
            self._db.executescript(SCHEMA)
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(attempts)")}
            if "duration" not in columns:  # a state dir from before the column existed
                self._db.execute("ALTER TABLE attempts ADD COLUMN duration REAL")
        except (OSError, sqlite3.Error) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise StateDirError(
                f"state dir {state_dir}: cannot open {self.path} ({reason})"
            ) from None
        self._lock = threading.Lock()
        self._pending: list[tuple[str, tuple[Any, ...]]] = []
        self._wake = threading.Event()
        self._flushed = threading.Condition()
        self._generation = 0  # batches taken
        self._done_generation = 0  # batches written
        self._stop = False
        self.failure: str | None = None
        self._thread = threading.Thread(target=self._run, name="farm-store", daemon=True)
        self._thread.start()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.row_factory = sqlite3.Row
        return db

    # --- start-up ---------------------------------------------------------------------------------

    def restore(self) -> Restored:
        """The current epoch's state as the last process left it."""
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        epoch = int(meta.get("epoch", 0))
        seed = int(meta["seed"]) if "seed" in meta else None
        ledger_seq = int(meta.get("ledger_seq", 0))
        attempt_seq = int(meta.get("attempt_seq", 0))
        row = self._db.execute("SELECT MAX(seq) FROM writes").fetchone()
        ledger_seq = max(ledger_seq, row[0] or 0)
        row = self._db.execute("SELECT MAX(seq) FROM attempts").fetchone()
        attempt_seq = max(attempt_seq, row[0] or 0)
        writes = self._db.execute(
            f"SELECT {WRITE_COLUMNS} FROM writes WHERE epoch = ? ORDER BY seq", (epoch,)
        ).fetchall()
        faults = [
            (r[0], r[1], r[2], r[3])
            for r in self._db.execute(
                "SELECT service, tenant, kind, n FROM faults WHERE epoch = ?", (epoch,)
            )
        ]
        return Restored(epoch, seed, ledger_seq, attempt_seq, writes, faults)

    # --- the request path: queue only -------------------------------------------------------------

    def put(self, table: str, row: tuple[Any, ...]) -> None:
        """Queue one row for ``writes`` / ``attempts`` (or an op: ``fault``, ``outcome``,
        ``epoch``). No I/O; the writer thread commits it within ``FLUSH_SECONDS``."""
        self._pending.append((table, row))

    # --- the writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            self._write_batch()
        self._write_batch()

    def _write_batch(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
            self._generation += 1
            generation = self._generation
        if batch:
            try:
                self._apply(batch)
            except sqlite3.Error as exc:  # a full disk: say it once, keep serving from memory
                if self.failure is None:
                    log.error(
                        "farm store %s: cannot write (%s); ground truth not durable", self.path, exc
                    )
                self.failure = str(exc)
        with self._flushed:
            self._done_generation = max(self._done_generation, generation)
            self._flushed.notify_all()

    def _apply(self, batch: list[tuple[str, tuple[Any, ...]]]) -> None:
        db = self._db
        db.execute("BEGIN")
        try:
            i = 0
            while i < len(batch):
                table = batch[i][0]
                j = i
                while j < len(batch) and batch[j][0] == table and j - i < ROWS_PER_STATEMENT:
                    j += 1
                rows = [r for _, r in batch[i:j]]
                self._apply_group(db, table, rows)
                i = j
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @staticmethod
    def _apply_group(db: sqlite3.Connection, table: str, rows: list[tuple[Any, ...]]) -> None:
        if table in ("writes", "attempts"):
            width = len(rows[0])
            marks = "(" + ", ".join("?" * width) + ")"
            columns = WRITE_COLUMNS if table == "writes" else ATTEMPT_COLUMNS
            flat = [v for r in rows for v in r]
            db.execute(
                f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([marks] * len(rows)), flat
            )
            seq = max(r[0] for r in rows)
            if (
                table == "attempts"
                and seq // PRUNE_EVERY_ROWS != (seq - len(rows)) // PRUNE_EVERY_ROWS
            ):
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

    def flush(self, timeout: float = 10.0) -> None:
        """Block until every row queued before this call is committed (admin reads, tests)."""
        with self._lock:
            target = self._generation + 1
        self._wake.set()
        with self._flushed:
            self._flushed.wait_for(lambda: self._done_generation >= target, timeout)

    def close(self) -> None:
        """Write what is queued and stop the writer thread (idempotent)."""
        if self._stop:
            return
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=10)
        self._db.close()

    # --- reads (admin API; each opens its own connection: readers never block the writer) ------

    @contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10)
        db.row_factory = sqlite3.Row
        with closing(db):
            yield db

    def oldest_attempt(self) -> int | None:
        """The smallest attempt sequence number still kept."""
        with self.reader() as db:
            row = db.execute("SELECT MIN(seq) FROM attempts").fetchone()
        return row[0] if row else None

    def attempts(
        self,
        epoch: int,
        *,
        since_seq: int = 0,
        service: str | None = None,
        limit: int = 1000,
    ) -> list[sqlite3.Row]:
        """Attempt-log rows of ``epoch`` with ``seq > since_seq``, oldest first."""
        sql = f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE epoch = ? AND seq > ?"
        args: list[Any] = [epoch, since_seq]
        if service is not None:
            sql += " AND service = ?"
            args.append(service)
        sql += " ORDER BY seq LIMIT ?"
        args.append(limit)
        with self.reader() as db:
            return db.execute(sql, args).fetchall()
