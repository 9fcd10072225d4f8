"""A live stack for the observability tests: farm + AAM backend, Pushgateway, Prometheus.

Everything listens on 127.0.0.1 at ports picked by the OS; the processes started here are
stopped by PID in ``close()``. The farm and the backend run as ``gauntlet`` child processes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
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

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.popen = subprocess.Popen(
            args, stdout=self._log_file, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )

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

    def wait_for_targets(self, jobs: list[str], timeout: float = 60) -> None:
        """Every job scraped successfully at least once (the first scrape takes ~6 s; on a busy
        machine Prometheus answers 503 "Service Unavailable" until its TSDB is open)."""

        def all_up() -> bool:
            self.process.assert_running()
            if self.http.get("/-/ready").status_code != 200:
                return False
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
    """The farm (all preseeded services) and the AAM backend, each its own ``gauntlet`` process.

    Separate processes, as in production: each exposes only its own metrics registry, so series
    left in this test process by other tests cannot leak into what Prometheus scrapes.
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        farm_port, backend_port = free_port(), free_port()
        self.farm_url = f"http://127.0.0.1:{farm_port}"
        self.backend_url = f"http://127.0.0.1:{backend_port}"
        self.admin_token = ""
        self.backend_token = ""
        self._farm_args = [
            *GAUNTLET, "farm", "serve", "--configs", str(ROOT / "farm/configs"),
            "--host", "127.0.0.1", "--port", str(farm_port), "--seed", "42",
            "--state-dir", str(state_dir / "farm"),
        ]  # fmt: skip
        self._backend_args = [
            *GAUNTLET, "backend", "serve", "--host", "127.0.0.1", "--port", str(backend_port),
            "--farm-url", self.farm_url, "--admin-token-file", str(state_dir / "farm/admin-token"),
            "--state-dir", str(state_dir / "backend"),
        ]  # fmt: skip
        self._processes: list[Process] = []

    def start(self, timeout: float = 30) -> None:
        secrets = ("GAUNTLET_ADMIN_TOKEN", "GAUNTLET_BACKEND_TOKEN")
        env = {k: v for k, v in os.environ.items() if k not in secrets}
        farm = Process(self._farm_args, self.state_dir / "farm.log", env=env)
        self._processes.append(farm)
        wait_until(lambda: _healthy(farm, f"{self.farm_url}/healthz"), timeout=timeout, what="farm")
        self.admin_token = (self.state_dir / "farm/admin-token").read_text().strip()
        backend = Process(self._backend_args, self.state_dir / "backend.log", env=env)
        self._processes.append(backend)
        wait_until(
            lambda: _healthy(backend, f"{self.backend_url}/health"), timeout=timeout, what="backend"
        )
        # No GAUNTLET_BACKEND_TOKEN: the backend generated one into its state dir (mode 0600).
        self.backend_token = (self.state_dir / "backend/backend-token").read_text().strip()

    def close(self) -> None:
        for process in reversed(self._processes):
            process.stop()


GAUNTLET = [sys.executable, "-m", "workflows"]


def _healthy(process: Process, url: str) -> bool:
    process.assert_running()
    return httpx.get(url, timeout=2).status_code == 200


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
