"""Run history in SQLite: one row per scenario run, with its scorecard once finished."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workflows.scorecard import Scorecard

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
                " (id, scenario, mode, profile, seed, status, started_at)"
                " VALUES (?, ?, ?, ?, ?, 'running', ?)",
                (run_id, scenario, mode, profile, seed, now),
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
