"""The store's writer process: it owns the SQLite file, outlives a killed farm long enough to
commit what it was handed, and a second store on the same file waits for it."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from farm.store import FarmStore
from farm.store_writer import MAX_QUERY_CHARS, attempt_row


def _attempt(seq: int, query: bytes = b"", duration: float | None = 0.0001234567) -> tuple:
    return (seq, 0, 1.0, "svc", "acme", "cred#1", "GET", "/svc/v1/items", query, 200, None,
            None, 0, None, b"2", b"op-1", None, duration, None, None)  # fmt: skip


def test_a_batch_handed_to_the_writer_is_committed_though_the_farm_is_killed(
    tmp_path: Path,
) -> None:
    # The farm process hands a batch over and is SIGKILLed before the writer can answer.
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from farm.store import FarmStore
        from farm.store_writer import write_frame
        store = FarmStore(Path({str(tmp_path)!r}))
        rows = [("attempts", (seq, *{_attempt(0)[1:]!r})) for seq in range(1, 501)]
        write_frame(store._feed, (1, rows))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    farm = subprocess.run([sys.executable, "-c", script], timeout=60, check=False)
    assert farm.returncode == -signal.SIGKILL
    store = FarmStore(tmp_path)  # waits until the old writer has finished
    try:
        assert store.restore().attempt_seq == 500
        rows = store.attempts(0, limit=1000)
        assert [r["seq"] for r in rows] == list(range(1, 501))
        assert rows[0]["retry_after"] == "2" and rows[0]["idempotency_key"] == "op-1"
    finally:
        store.close()


def test_a_second_store_on_the_same_file_waits_for_the_first_writer(tmp_path: Path) -> None:
    first = FarmStore(tmp_path)
    first.put("attempts", _attempt(1))
    opened: list[FarmStore] = []
    second = threading.Thread(target=lambda: opened.append(FarmStore(tmp_path)))
    second.start()
    second.join(timeout=0.5)
    assert second.is_alive() and not opened, "the second writer did not wait for the first"
    first.close()  # commits row 1, then its writer exits and lets the second one in
    second.join(timeout=30)
    assert opened
    try:
        assert opened[0].restore().attempt_seq == 1
    finally:
        opened[0].close()


def test_the_writer_finishes_attempt_rows_as_queued() -> None:
    row = attempt_row(_attempt(7, b"a=%C3%A9&" + b"x" * (MAX_QUERY_CHARS + 10)))
    assert row[8].startswith("a=%C3%A9&x") and row[8].endswith("…")
    assert len(row[8]) == MAX_QUERY_CHARS + 1
    assert row[14] == "2" and row[15] == "op-1" and row[17] == 0.000123
    assert attempt_row(_attempt(8, duration=None))[17] is None
