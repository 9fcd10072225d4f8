"""The farm's durable ground truth: ``<state dir>/farm.sqlite3`` (SQLite, WAL).

What survives a restart: the committed writes (with the stored record and the response an
idempotent replay answers with), the fault counts, the attempt log, the epoch (how many resets)
and the seed. The request path never touches the disk: it appends a row to an in-memory batch
(:meth:`FarmStore.put`), and a thread ships the batch every ``FLUSH_SECONDS`` to the writer
process (``farm/store_writer.py``), which commits it in one transaction: SQLite's work never
holds the serving process's GIL. Admin reads call :meth:`FarmStore.flush` first, so they see
every row answered so far. What a ``kill -9`` can lose is the last batch not yet handed to the
writer (at most ``FLUSH_SECONDS`` of traffic: the writer outlives the farm long enough to commit
what it received); a runner never trusts such a window anyway, because the boot id changes with the
process and the runner's end-of-run check turns the run into ``ERROR``.

The file and its folder are private (0600 in 0700): it holds request bodies.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farm import store_writer
from farm.store_writer import ATTEMPT_COLUMNS, WRITE_COLUMNS, read_frame, write_frame

log = logging.getLogger("farm.store")

FILE_NAME = "farm.sqlite3"
FLUSH_SECONDS = 0.05
#: The writer process's program (run by file name: it imports nothing from the farm).
WRITER = Path(store_writer.__file__)


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
    """One farm's SQLite file: rows queued in memory, a thread that ships them every
    ``FLUSH_SECONDS`` to the writer process (``farm/store_writer.py``), which commits them."""

    def __init__(self, state_dir: Path) -> None:
        private_dir(state_dir)
        self.path = state_dir / FILE_NAME
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            os.chmod(self.path, 0o600)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise StateDirError(
                f"state dir {state_dir}: cannot open {self.path} ({reason})"
            ) from None
        # The writer waits for the one of a previous process on this file, creates the schema
        # and answers: only then is the file's content final enough to restore from.
        try:
            self._writer = subprocess.Popen(
                [sys.executable, "-I", "-S", str(WRITER), str(self.path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        except OSError as exc:
            raise StateDirError(
                f"state dir {state_dir}: cannot start its writer process ({exc.strerror or exc})"
            ) from None
        assert self._writer.stdin is not None and self._writer.stdout is not None
        self._feed, self._answers = self._writer.stdin, self._writer.stdout
        try:
            _, error = read_frame(self._answers)
        except (EOFError, ValueError) as exc:
            error = f"the writer process ended ({exc})"
        if error is not None:
            self._end_writer()
            raise StateDirError(f"state dir {state_dir}: cannot open {self.path} ({error})")
        self._lock = threading.Lock()
        self._pending: list[tuple[str, tuple[Any, ...]]] = []
        self._wake = threading.Event()
        self._flushed = threading.Condition()
        self._generation = 0  # batches taken
        self._done_generation = 0  # batches written
        self._stop = False
        self._closed = False
        self.failure: str | None = None
        self._thread = threading.Thread(target=self._run, name="farm-store", daemon=True)
        self._thread.start()

    # --- start-up ---------------------------------------------------------------------------------

    def restore(self) -> Restored:
        """The current epoch's state as the last process left it."""
        with self.reader() as db:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            epoch = int(meta.get("epoch", 0))
            seed = int(meta["seed"]) if "seed" in meta else None
            ledger_seq = int(meta.get("ledger_seq", 0))
            attempt_seq = int(meta.get("attempt_seq", 0))
            row = db.execute("SELECT MAX(seq) FROM writes").fetchone()
            ledger_seq = max(ledger_seq, row[0] or 0)
            row = db.execute("SELECT MAX(seq) FROM attempts").fetchone()
            attempt_seq = max(attempt_seq, row[0] or 0)
            writes = db.execute(
                f"SELECT {WRITE_COLUMNS} FROM writes WHERE epoch = ? ORDER BY seq", (epoch,)
            ).fetchall()
            faults = [
                (r[0], r[1], r[2], r[3])
                for r in db.execute(
                    "SELECT service, tenant, kind, n FROM faults WHERE epoch = ?", (epoch,)
                )
            ]
        return Restored(epoch, seed, ledger_seq, attempt_seq, writes, faults)

    # --- the request path: queue only -------------------------------------------------------------

    def put(self, table: str, row: tuple[Any, ...]) -> None:
        """Queue one row for ``writes`` / ``attempts`` (or an op: ``fault``, ``outcome``,
        ``epoch``). No I/O; the writer process commits it within ``FLUSH_SECONDS``."""
        self._pending.append((table, row))

    # --- the shipping thread ----------------------------------------------------------------------

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
            # One batch in flight at a time: the next is taken once this one is committed.
            try:
                write_frame(self._feed, (generation, batch))
                _, error = read_frame(self._answers)
            except (OSError, EOFError, ValueError) as exc:
                error = f"the writer process ended ({exc})"
            if error is not None:  # a full disk: say it once, keep serving from memory
                if self.failure is None:
                    log.error(
                        "farm store %s: cannot write (%s); ground truth not durable",
                        self.path,
                        error,
                    )
                self.failure = error
        with self._flushed:
            self._done_generation = max(self._done_generation, generation)
            self._flushed.notify_all()

    def flush(self, timeout: float = 10.0) -> None:
        """Block until every row queued before this call is committed (admin reads, tests)."""
        with self._lock:
            target = self._generation + 1
        self._wake.set()
        with self._flushed:
            self._flushed.wait_for(lambda: self._done_generation >= target, timeout)

    def close(self) -> None:
        """Write what is queued, stop the thread and let the writer process end (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=10)
        self._end_writer()

    def _end_writer(self) -> None:
        """Close the writer's input (it commits what it has and exits) and reap it."""
        for stream in (self._feed, self._answers):
            with contextlib.suppress(OSError):
                stream.close()
        try:
            self._writer.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._writer.kill()
            self._writer.wait()

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
