"""Run history in SQLite: one row per scenario run, with its scorecard once finished.

Each running row names the process running it (``host:pid``). A row still ``running`` whose
process is gone (a crash, ``kill -9``) becomes ``interrupted`` the next time the history is
opened (:meth:`RunHistory.mark_interrupted`); the run's AAM state is then recovered by
``gauntlet dlq replay`` or a restarted backend (``aam/intents.py``).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workflows.scorecard import Scorecard

_THIS_PROCESS = f"{socket.gethostname()}:{os.getpid()}"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    scenario TEXT NOT NULL,
    mode TEXT NOT NULL,
    profile TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,
    verdict TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    error TEXT,
    scorecard TEXT
)
"""


class RunHistory:
    """``<state dir>/history.sqlite``: small, synchronous, safe to open per call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.execute(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
            if "owner" not in columns:
                db.execute("ALTER TABLE runs ADD COLUMN owner TEXT")

    def mark_interrupted(self) -> list[str]:
        """Runs left ``running`` by a process that is gone become ``interrupted``; their ids."""
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT id, owner FROM runs WHERE status = 'running' AND owner IS NOT NULL"
            ).fetchall()
        gone = [(r["id"], r["owner"]) for r in rows if not _owner_alive(r["owner"])]
        if not gone:
            return []
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with closing(self._connect()) as db, db:
            for run_id, owner in gone:
                db.execute(
                    "UPDATE runs SET status = 'interrupted', finished_at = ?, error = ? "
                    "WHERE id = ? AND status = 'running'",
                    (now, f"interrupted: its process ({owner}) stopped during the run", run_id),
                )
        return [run_id for run_id, _ in gone]

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        db.row_factory = sqlite3.Row
        return db

    def start(self, run_id: str, scenario: str, mode: str, profile: str, seed: int) -> None:
        """Record a run as started."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT OR REPLACE INTO runs"
                " (id, scenario, mode, profile, seed, status, started_at, owner)"
                " VALUES (?, ?, ?, ?, ?, 'running', ?, ?)",
                (run_id, scenario, mode, profile, seed, now, _THIS_PROCESS),
            )

    def finish(self, card: Scorecard) -> None:
        """Store a finished run's scorecard and verdict."""
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT OR REPLACE INTO runs (id, scenario, mode, profile, seed, status, verdict,"
                " started_at, finished_at, scorecard) VALUES (?, ?, ?, ?, ?, 'done', ?, ?, ?, ?)",
                (
                    card.run_id,
                    card.scenario,
                    card.mode,
                    card.profile,
                    card.seed,
                    card.verdict,
                    card.started_at,
                    card.finished_at,
                    card.to_json(),
                ),
            )

    def fail(self, run_id: str, error: str) -> None:
        """Mark a run as errored (it produced no verdict)."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with closing(self._connect()) as db, db:
            db.execute(
                "UPDATE runs SET status='error', error=?, finished_at=? WHERE id=?",
                (error[:2000], now, run_id),
            )

    def list(self, limit: int = 50) -> list[dict[str, Any]]:
        """Most recent runs first, without their scorecards."""
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT id, scenario, mode, profile, seed, status, verdict, started_at,"
                " finished_at, error FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [dict(r) for r in rows]

    def get(self, run_id: str) -> dict[str, Any] | None:
        """One run with its scorecard (parsed), or ``None``."""
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            return None
        out = dict(row)
        out["scorecard"] = json.loads(out["scorecard"]) if out["scorecard"] else None
        return out

    def latest_id(self) -> str | None:
        """The most recent run's id."""
        runs = self.list(limit=1)
        return runs[0]["id"] if runs else None


def _owner_alive(owner: str) -> bool:
    """Whether ``host:pid`` may still be running (another host: assume so)."""
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
