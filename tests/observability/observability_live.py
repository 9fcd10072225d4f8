"""A live stack for the observability tests: farm + AAM backend, Pushgateway, Prometheus.

Everything listens on 127.0.0.1 at ports picked by the OS; the processes started here are
stopped by PID in ``close()``. The farm and the backend run in one background thread with its own
event loop, so Prometheus can scrape them while the test thread blocks on HTTP calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml
from observability_support import ROOT, RULES_FILE


def free_port() -> int:
    """A port the OS just handed out on 127.0.0.1 (closed again for the child to bind)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Any, *, timeout: float, interval: float = 0.2, what: str) -> Any:
    """Poll ``check()`` until it returns something truthy; bounded in time and count."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 1):
        with contextlib.suppress(httpx.HTTPError):
            result = check()
            if result:
                return result
        if time.monotonic() > deadline:
            break
        time.sleep(interval)
    raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")


class Process:
    """A child process we started, stopped by its PID."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.popen = subprocess.Popen(args, stdout=self._log_file, stderr=subprocess.STDOUT)

    def assert_running(self) -> None:
        if self.popen.poll() is not None:
            raise RuntimeError(f"{self.log.name} exited: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        self._log_file.close()


class Prometheus:
    """The Debian Prometheus on loopback, with the compose config's jobs pointed at our targets."""

    def __init__(self, binary: str, workdir: Path, targets: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
        config["global"] = {
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "evaluation_interval": "1s",
        }
        config["rule_files"] = [str(RULES_FILE)]
        jobs = []
        for job in config["scrape_configs"]:
            if job["job_name"] in targets:
                job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
                jobs.append(job)
        config["scrape_configs"] = jobs
        config_file = workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        self.process = Process(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            workdir / "prometheus.log",
        )
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def api(self, path: str, **params: Any) -> Any:
        """GET an /api/v1 endpoint; raise on an error status, return ``data``."""
        response = self.http.get(f"/api/v1/{path}", params=params)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {response.status_code} {body}")
        return body["data"]

    def instant(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Rows of an instant query."""
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return list(self.api("query", **params)["result"])

    def range(self, expr: str, start: float, end: float, step: str = "1s") -> list[dict[str, Any]]:
        """Series of a range query."""
        return list(
            self.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=step)[
                "result"
            ]
        )

    def wait_for_targets(self, jobs: list[str], timeout: float = 20) -> None:
        """Every job scraped successfully at least once (the first scrape takes ~6 s)."""

        def all_up() -> bool:
            self.process.assert_running()
            up = {row["metric"]["job"] for row in self.instant("up == 1")}
            return set(jobs) <= up

        wait_until(all_up, timeout=timeout, what=f"up == 1 for {jobs}")

    def close(self) -> None:
        self.http.close()
        self.process.stop()


class Pushgateway:
    """The Debian Pushgateway on loopback, in memory only."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = Process(
            [binary, f"--web.listen-address=127.0.0.1:{self.port}", "--persistence.file="],
            workdir / "pushgateway.log",
        )

    def wait_ready(self, timeout: float = 15) -> None:
        def ready() -> bool:
            self.process.assert_running()
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200

        wait_until(ready, timeout=timeout, what="the Pushgateway")

    def close(self) -> None:
        self.process.stop()


class GauntletStack:
    """The farm (all preseeded services) and the AAM backend, served from a background thread."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.farm_url = ""
        self.backend_url = ""
        self.admin_token = ""
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="gauntlet-stack", daemon=True)

    def start(self, timeout: float = 30) -> None:
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise RuntimeError(f"stack did not start: {self._error!r}")

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the test thread through start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        from farm.loader import DEFAULT_CONFIG_DIR, load_specs
        from farm.server import running_farm
        from workflows.backend import BackendSettings, create_app

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        specs = load_specs([DEFAULT_CONFIG_DIR])
        async with running_farm(specs, seed=42, state_dir=self.state_dir / "farm") as farm:
            settings = BackendSettings(
                farm_urls={"*": farm.url},
                admin_token=farm.admin_token,
                state_dir=self.state_dir / "backend",
            )
            server = uvicorn.Server(
                uvicorn.Config(
                    create_app(settings),
                    host="127.0.0.1",
                    port=0,
                    log_level="warning",
                    access_log=False,
                )
            )
            server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
            task = asyncio.create_task(server.serve())
            for _ in range(500):
                if server.started or task.done():
                    break
                await asyncio.sleep(0.01)
            if not server.started:
                task.result()
                raise RuntimeError("backend did not start")
            port = server.servers[0].sockets[0].getsockname()[1]
            self.farm_url, self.admin_token = farm.url, farm.admin_token
            self.backend_url = f"http://127.0.0.1:{port}"
            self._ready.set()
            await self._stop.wait()
            server.should_exit = True
            await asyncio.wait_for(task, timeout=15)

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)


def run_cli_scenario(
    scenario: Path, farm_url: str, token_file: Path, workdir: Path, pushgateway_url: str
) -> subprocess.CompletedProcess[str]:
    """``gauntlet run`` as the Kubernetes Job runs it, pushing its final figures at the end."""
    env = {**os.environ, "GAUNTLET_PUSHGATEWAY_URL": pushgateway_url}
    env.pop("GAUNTLET_SERVICE_URLS", None)
    return subprocess.run(
        [
            str(ROOT / ".venv/bin/gauntlet"),
            "run",
            str(scenario),
            "--duration",
            "3",
            "--farm-url",
            farm_url,
            "--admin-token-file",
            str(token_file),
            "--state-dir",
            str(workdir / "cli-state"),
            "--json",
            str(workdir / "cli-scorecard.json"),
            "--no-live",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
