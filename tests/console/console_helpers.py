"""A real farm and AAM backend on loopback for the browser tests, and the node scripts' runner."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from farm.loader import DEFAULT_CONFIG_DIR, load_specs
from farm.server import running_farm
from workflows import console_api
from workflows.backend import BackendSettings, create_app

REPO = Path(__file__).resolve().parents[2]
UI = REPO / "ui"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
TOKEN = "browser-test-backend-token-0123456789"
LOGIN_CODE = "browser-test-login-code-0123456789"


def require_console_build() -> None:
    """The browser tests need the built page, playwright-core and Chromium: say how to get them."""
    missing = []
    if not (UI / "dist" / "index.html").exists():
        missing.append("ui/dist (run `make install` or `make ui`)")
    if not (UI / "node_modules" / "playwright-core").exists():
        missing.append("ui/node_modules/playwright-core (run `make ui`)")
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (Debian package chromium: `make install-system`)")
    if shutil.which("node") is None:
        missing.append("node (Node.js >= 20.19)")
    assert not missing, "the browser tests need: " + "; ".join(missing)


@dataclass
class Stack:
    url: str
    farm_url: str
    admin_token: str
    state_dir: Path


@contextlib.asynccontextmanager
async def serving(app: object) -> AsyncIterator[str]:
    """Serve an ASGI app on 127.0.0.1:0 in this loop; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "backend did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)


@contextlib.asynccontextmanager
async def console_stack(
    tmp_path: Path, monkeypatch: object, configs: Path = DEFAULT_CONFIG_DIR
) -> AsyncIterator[Stack]:
    """The farm serving ``configs`` and the backend (with the built console) on loopback."""
    monkeypatch.setenv(console_api.LOGIN_CODE_ENV, LOGIN_CODE)  # type: ignore[attr-defined]
    specs = load_specs([configs])
    async with running_farm(specs, seed=42, state_dir=tmp_path / "farm") as farm:
        settings = BackendSettings(
            farm_urls={"*": farm.url},
            admin_token=farm.admin_token,
            state_dir=tmp_path / "backend",
            configs=[configs],
            token=TOKEN,
        )
        async with serving(create_app(settings)) as url:
            yield Stack(url, farm.url, farm.admin_token, settings.state_dir)


async def run_node(script: str, env: dict[str, str], limit_seconds: float) -> str:
    """Run ``node ui/e2e/<script>`` without blocking the loop that serves the stack."""
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(UI / "e2e" / script),
        cwd=UI,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=limit_seconds)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        raise AssertionError(
            f"{script} timed out after {limit_seconds:.0f} s:\n{out.decode()}"
        ) from None
    text = out.decode(errors="replace")
    print(text)
    assert proc.returncode == 0, f"{script} failed ({proc.returncode}):\n{text}"
    return text
