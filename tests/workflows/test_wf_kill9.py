"""Crash-safe writes (issue 10, probe row 3): kill -9 the runner or the backend in the middle
of ``network-chaos-dlq``, recover, and count against the farm's ledger: 0 lost, 0 duplicated.

Before: 9 of 12 (backend: 11 of 12) in-flight writes were lost (``pending`` key rows without a
body that nothing recovered), the farm stayed at ``hell`` and the run showed ``running`` forever.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from farm.loader import DEFAULT_CONFIG_DIR

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "workflows" / "scenarios" / "network-chaos-dlq.yaml"
ADMIN = "kill9-admin-token"
# Wide enough for the `runs list` table whatever COLUMNS the test runner (or an xdist worker) has.
ENV = {**os.environ, "GAUNTLET_ADMIN_TOKEN": ADMIN, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, f"{url}: process exited with {proc.returncode}"
        time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


def _gauntlet(*args: str) -> list[str]:
    return [sys.executable, "-m", "workflows", *args]


def _intents(db: Path) -> list[sqlite3.Row]:
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM write_intents").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def _aam_db(state: Path) -> Path | None:
    runs = sorted((state / "runs").glob("*/aam/aam.sqlite3")) if (state / "runs").exists() else []
    return runs[-1] if runs else None


def _kill_mid_run(state: Path, proc: subprocess.Popen[bytes]) -> tuple[Path, int]:
    """SIGKILL ``proc`` once writes are committing and some are in flight; returns the AAM
    database and how many writes were in flight at that moment."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be killed"
        db = _aam_db(state)
        if db is not None:
            rows = _intents(db)
            done = sum(r["status"] != "pending" for r in rows)
            pending = sum(r["status"] == "pending" for r in rows)
            if done >= 20 and pending >= 3:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                in_flight = sum(r["status"] == "pending" for r in _intents(db))
                return db, in_flight
        time.sleep(0.05)
    raise AssertionError("no moment with committed and in-flight writes within 90 s")


def _wait_for_calm(url: str) -> None:
    """The dead runner's lease lapses (30 s) and the farm goes back to calm by itself."""
    admin = {"Authorization": f"Bearer {ADMIN}"}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        lease = httpx.get(f"{url}/admin/lease", headers=admin, timeout=5).json()["lease"]
        if lease is None:
            status = httpx.get(f"{url}/admin/status", headers=admin, timeout=5).json()
            assert status["chaos"]["level"] == "calm"
            return
        time.sleep(0.5)
    raise AssertionError("the crashed run's lease never lapsed")


def _count(db: Path, url: str) -> dict[str, Any]:
    """Every write the AAM accepted (its intents) against the farm's ledger."""
    ledger = httpx.get(
        f"{url}/admin/ledger", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10
    ).json()["writes"]
    committed = Counter((w["service"], w["tenant"], json.dumps(w["lookup_value"])) for w in ledger)
    intents = _intents(db)
    lost, duplicated = [], []
    for row in intents:
        service, _, tenant = row["connector_id"].partition(":")
        n = committed[(service, tenant, row["lookup_value"])]
        if n == 0:
            lost.append(row["key"])
        elif n > 1:
            duplicated.append(row["key"])
    return {
        "intents": len(intents),
        "statuses": Counter(r["status"] for r in intents),
        "lost": lost,
        "duplicated": duplicated,
        "ledger_duplicates": sum(n - 1 for n in committed.values() if n > 1),
    }


@pytest.fixture
def farm(tmp_path: Path) -> Any:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        _gauntlet("farm", "serve", "--port", str(port), "--state-dir", str(tmp_path / "farm")),
        env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_http(f"{url}/healthz", proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.slow
def test_kill_9_the_runner_mid_run_then_dlq_replay_loses_and_duplicates_nothing(
    farm: str, tmp_path: Path
) -> None:
    state = tmp_path / "runner"
    runner = subprocess.Popen(
        _gauntlet("run", str(SCENARIO), "--duration", "60", "--farm-url", farm,
                  "--state-dir", str(state), "--configs", str(DEFAULT_CONFIG_DIR), "--no-live"),
        env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        db, in_flight = _kill_mid_run(state, runner)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert in_flight >= 1
    _wait_for_calm(farm)
    replay = subprocess.run(
        _gauntlet("dlq", "replay", "--farm-url", farm, "--state-dir", str(state), "--wait"),
        env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert replay.returncode == 0, replay.stdout + replay.stderr
    runs = subprocess.run(
        _gauntlet("runs", "list", "--state-dir", str(state)),
        env=ENV, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "interrupted" in runs.stdout and "running" not in runs.stdout
    figures = _count(db, farm)
    print(f"kill -9 runner: in flight {in_flight}, figures {figures}")
    assert figures["lost"] == [] and figures["duplicated"] == []
    assert figures["ledger_duplicates"] == 0
    assert figures["statuses"]["pending"] == 0


@pytest.mark.slow
def test_kill_9_the_backend_mid_run_then_restart_recovers_every_write(
    farm: str, tmp_path: Path
) -> None:
    state = tmp_path / "backend"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    token = "kill9-backend-token"
    env = {**ENV, "GAUNTLET_BACKEND_TOKEN": token}
    command = _gauntlet(
        "backend", "serve", "--port", str(port), "--farm-url", farm,
        "--state-dir", str(state), "--configs", str(DEFAULT_CONFIG_DIR),
    )  # fmt: skip
    backend = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    restarted = None
    try:
        _wait_http(f"{url}/health", backend)
        headers = {"Authorization": f"Bearer {token}"}
        started = httpx.post(
            f"{url}/scenarios/run",
            json={"scenario": "network-chaos-dlq", "duration_seconds": 60},
            headers=headers,
            timeout=10,
        )
        assert started.status_code == 202, started.text
        db, in_flight = _kill_mid_run(state, backend)
        assert in_flight >= 1
        restarted = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_http(f"{url}/health", restarted)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            health = httpx.get(f"{url}/health", timeout=5).json()
            if not health["running"]:
                break
            time.sleep(0.5)
        runs = httpx.get(f"{url}/runs", headers=headers, timeout=10).json()["runs"]
    finally:
        for proc in (backend, restarted):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(10)
    assert [r["status"] for r in runs] == ["interrupted"]
    figures = _count(db, farm)
    print(f"kill -9 backend: in flight {in_flight}, figures {figures}")
    assert figures["lost"] == [] and figures["duplicated"] == []
    assert figures["ledger_duplicates"] == 0
    assert figures["statuses"]["pending"] == 0
