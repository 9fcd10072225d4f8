"""``make demo``: the farm and the AAM backend as local processes; naive, sdk-default and full
under a storm.

Everything the demo starts it also stops (by PID), on success, on failure and on Ctrl-C.
The web console is served by the backend: the demo prints a one-time login link for it (the code
is in the fragment after ``#``, which the browser never sends to a server) and, with ``stay``,
keeps everything up after the comparison until Ctrl-C so the console can still be used.
Exit code: 0 when the comparison came out as expected (naive and sdk-default FAILED, full
PASSED), 1 when it
did not, 2 when the demo could not run (port taken, a process did not start), 130 on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.live import Live

from workflows.backend import TOKEN_ENV, auth_headers, port_is_free, write_token_file
from workflows.console_api import LOGIN_CODE_ENV, LOGIN_CODE_TTL_SECONDS
from workflows.runner import RunProgress, ScenarioError, load_scenario
from workflows.scorecard import Scorecard, expected_verdict

HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 30.0
PROFILES = ("naive", "sdk-default", "full")


def gauntlet_command() -> list[str]:
    """How to start ``gauntlet`` as a child process with this interpreter."""
    script = Path(sys.executable).parent / "gauntlet"
    if script.exists():
        return [str(script)]
    found = shutil.which("gauntlet")
    if found:
        return [found]
    return [sys.executable, "-m", "workflows"]


class Child:
    """A child process with its output in a log file; stopped by PID, gently first."""

    def __init__(self, name: str, args: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C reaches the demo, which then stops us in order
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


def wait_healthy(client: httpx.Client, url: str, child: Child) -> None:
    """Poll ``url`` until it answers 200 (bounded), or fail with the child's last log lines."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited at start:\n{child.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if client.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{child.name} did not answer {url} within {START_TIMEOUT_SECONDS:.0f} s")


def follow_run(client: httpx.Client, backend: str, run_id: str, console: Console) -> dict[str, Any]:
    """Show a run's live progress until it is done; returns the final run record."""
    from workflows.report import progress_table

    record: dict[str, Any] = {}
    with Live(console=console, refresh_per_second=4, transient=True) as live:
        for _ in range(100_000):  # bounded; a run ends long before (duration + drain)
            record = client.get(f"{backend}/runs/{run_id}", timeout=10).json()
            progress = record.get("progress") or {}
            if progress:
                live.update(progress_table(RunProgress(**progress)))
            if record.get("status") in ("done", "error"):
                break
            time.sleep(0.5)
    return record


def run_demo(
    *,
    scenario: Path,
    duration: float,
    farm_port: int,
    backend_port: int,
    state_dir: Path,
    console: Console,
    stay: bool = False,
) -> int:
    """Start farm + backend, run the comparison through the backend API, stop everything."""
    from workflows.report import comparison, scorecard_tables

    try:
        spec = load_scenario(scenario)
    except ScenarioError as exc:
        console.print(f"[red]error[/red] {exc}")
        return 2
    for name, port in (("farm", farm_port), ("AAM backend", backend_port)):
        if not port_is_free(HOST, port):
            console.print(
                f"[red]error[/red] {HOST}:{port} (the {name}'s port) is already in use; "
                "stop whatever is listening there and run the demo again"
            )
            return 2
    state_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # One token for this demo only, handed to both children through their environment.
    env["GAUNTLET_ADMIN_TOKEN"] = secrets.token_urlsafe(24)
    backend_token = secrets.token_urlsafe(32)
    env[TOKEN_ENV] = backend_token
    # The token also goes to <state dir>/backend-token (0600) for signing in by hand.
    token_file = write_token_file(state_dir, backend_token)
    login_code = secrets.token_urlsafe(18)
    env[LOGIN_CODE_ENV] = login_code
    env.pop("GAUNTLET_SERVICE_URLS", None)
    farm_url = f"http://{HOST}:{farm_port}"
    backend_url = f"http://{HOST}:{backend_port}"
    cmd = gauntlet_command()
    children: list[Child] = []
    try:
        console.print(f"starting the farm on {farm_url} and the AAM backend on {backend_url} …")
        children.append(
            Child(
                "farm",
                [
                    *cmd,
                    "farm",
                    "serve",
                    "--port",
                    str(farm_port),
                    "--state-dir",
                    str(state_dir / "farm"),
                ],
                state_dir / "farm.log",
                env,
            )
        )
        children.append(
            Child(
                "AAM backend",
                [
                    *cmd,
                    "backend",
                    "serve",
                    "--port",
                    str(backend_port),
                    "--farm-url",
                    farm_url,
                    "--state-dir",
                    str(state_dir),
                ],
                state_dir / "backend.log",
                env,
            )
        )
        with httpx.Client(headers=auth_headers(backend_token)) as client:
            wait_healthy(client, f"{farm_url}/healthz", children[0])
            wait_healthy(client, f"{backend_url}/health", children[1])
            console.print(
                f"web console: [bold]{backend_url}/#login={login_code}[/bold]\n"
                f"  (open it in a browser; the link signs you in once, within "
                f"{LOGIN_CODE_TTL_SECONDS // 60} min; in another tab, paste the token from "
                f"{token_file})",
                soft_wrap=True,
            )
            console.print(
                f"running [bold]{spec.name}[/bold] ({spec.mode.value}, {duration:.0f} s per "
                f"profile, seed {spec.seed}) with profiles {', '.join(PROFILES)} …"
            )
            response = client.post(
                f"{backend_url}/scenarios/run",
                json={
                    "spec": spec.model_dump(mode="json"),
                    "profiles": list(PROFILES),
                    "duration_seconds": duration,
                },
                timeout=10,
            )
            if response.status_code != 202:
                console.print(f"[red]error[/red] backend refused the run: {response.text}")
                return 2
            cards: list[Scorecard] = []
            for run_id in response.json()["run_ids"]:
                record = follow_run(client, backend_url, run_id, console)
                if record.get("status") != "done" or not record.get("scorecard"):
                    console.print(f"[red]error[/red] run {run_id} failed: {record.get('error')}")
                    return 2
                data = dict(record["scorecard"])
                data.pop("totals", None)
                card = Scorecard.model_validate(data)
                console.print(scorecard_tables(card))
                cards.append(card)
        console.print(comparison(cards))
        unexpected = [c for c in cards if c.verdict != expected_verdict(c.profile)]
        if unexpected:
            for card in unexpected:
                console.print(
                    f"[red]unexpected:[/red] {card.profile} {card.verdict} "
                    f"(expected {expected_verdict(card.profile)})"
                )
            code = 1
        else:
            console.print(
                "[green]as expected:[/green] the naive client and the SDK defaults FAILED the "
                "storm and the full AAM PASSED it. Scorecards: "
                + ", ".join(str(state_dir / "runs" / c.run_id / "scorecard.json") for c in cards)
            )
            code = 0
        if stay:
            console.print(
                f"the farm, the backend and the console stay up at {backend_url}/ "
                "(runs, reports, chaos); press Ctrl-C to stop them"
            )
            for _ in range(10**9):  # until Ctrl-C, or a child dies
                if not all(child.alive() for child in children):
                    console.print("[red]error[/red] the farm or the backend stopped")
                    return 2
                time.sleep(1)
        return code
    except KeyboardInterrupt:
        console.print("interrupted: stopping the farm and the backend")
        return 130
    except (RuntimeError, httpx.HTTPError) as exc:
        console.print(f"[red]error[/red] {exc}")
        return 2
    finally:
        for child in reversed(children):
            child.stop()
