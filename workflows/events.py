"""The console's event stream: named events fanned out to live subscribers and stored per run.

One stream carries every event the web console needs (``hello``, ``tick``, ``run``, ``verdict``,
``chaos``). Events that belong to a run are also appended to ``<state dir>/console.sqlite`` so the
run page can rebuild its charts after a reload or a restart of the backend.

A slow subscriber never slows the run: each has a bounded queue, and when it is full the oldest
event is dropped and the subscriber is told how many it missed (``lost`` on the next event).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Events a subscriber may fall behind by before the oldest are dropped.
SUBSCRIBER_QUEUE = 256
#: Longest silence on an open stream before a comment line keeps proxies from closing it.
KEEPALIVE_SECONDS = 15.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS run_events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    t REAL NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
)
"""


@dataclass(frozen=True)
class Event:
    """One named event: ``kind`` is the SSE ``event:`` name, ``data`` its JSON payload."""

    kind: str
    data: dict[str, Any]
    t: float
    seq: int

    def sse(self, lost: int = 0) -> bytes:
        """The event as an SSE frame (``id`` is the hub's sequence number)."""
        payload = dict(self.data)
        payload.setdefault("t", self.t)
        if lost:
            payload["lost"] = lost
        body = json.dumps(payload, separators=(",", ":"))
        return f"id: {self.seq}\nevent: {self.kind}\ndata: {body}\n\n".encode()


class EventStore:
    """Stored events of every run, in order (``<state dir>/console.sqlite``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def append(self, run_id: str, kind: str, data: dict[str, Any], t: float) -> None:
        """Store one event of ``run_id`` after the ones already stored."""
        body = json.dumps(data, separators=(",", ":"))
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT INTO run_events (run_id, seq, t, kind, data) VALUES (?,"
                " (SELECT COALESCE(MAX(seq), 0) + 1 FROM run_events WHERE run_id = ?),"
                " ?, ?, ?)",
                (run_id, run_id, t, kind, body),
            )

    def events(self, run_id: str, kinds: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """A run's events, oldest first: ``{"seq", "t", "kind", "data"}``."""
        query = "SELECT seq, t, kind, data FROM run_events WHERE run_id = ?"
        args: list[Any] = [run_id]
        if kinds:
            query += f" AND kind IN ({','.join('?' * len(kinds))})"
            args += list(kinds)
        with closing(self._connect()) as db:
            rows = db.execute(query + " ORDER BY seq", args).fetchall()
        return [{"seq": s, "t": t, "kind": k, "data": json.loads(d)} for s, t, k, d in rows]

    def count(self, run_id: str) -> int:
        """How many events a run has stored."""
        with closing(self._connect()) as db:
            query = "SELECT COUNT(*) FROM run_events WHERE run_id = ?"
            row = db.execute(query, (run_id,)).fetchone()
        return int(row[0])


class _Subscriber:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.lost = 0

    def offer(self, event: Event) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
                self.lost += 1
        self.queue.put_nowait(event)


class EventHub:
    """Publishes named events to every open stream; stores those that belong to a run."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._subscribers: set[_Subscriber] = set()
        self._seq = 0
        #: Bytes of event data sent to subscribers (all of them), for the console's own figures.
        self.bytes_sent = 0

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, kind: str, data: dict[str, Any], *, run_id: str | None = None) -> Event:
        """Send ``data`` as event ``kind``; with ``run_id``, also store it for the run page."""
        self._seq += 1
        event = Event(kind, data, round(time.time(), 3), self._seq)
        if run_id is not None:
            self.store.append(run_id, kind, data, event.t)
        for sub in list(self._subscribers):
            sub.offer(event)
        return event

    async def stream(self, first: Event | None = None) -> AsyncIterator[bytes]:
        """SSE frames for one subscriber until it disconnects (``first`` is sent before all)."""
        sub = _Subscriber()
        self._subscribers.add(sub)
        try:
            if first is not None:
                frame = first.sse()
                self.bytes_sent += len(frame)
                yield frame
            while True:
                try:
                    event = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                lost, sub.lost = sub.lost, 0
                frame = event.sse(lost)
                self.bytes_sent += len(frame)
                yield frame
        finally:
            self._subscribers.discard(sub)

    def hello(self, data: dict[str, Any]) -> Event:
        """A ``hello`` event for one new subscriber only (not published to the others)."""
        return Event("hello", data, round(time.time(), 3), self._seq)
