"""Running the farm: ``serve`` (blocking, for ``gauntlet farm serve``) and ``running_farm``
(an async context manager serving on an ephemeral loopback port inside the caller's event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from farm import metrics
from farm.app import FarmApp, create_app
from farm.front import HTTP_PROTOCOL
from farm.spec import ServiceSpec

log = logging.getLogger("farm")


def port_is_free(host: str, port: int) -> bool:
    """True when ``host:port`` can be bound right now (checked before starting uvicorn, so a
    taken port is one clear sentence instead of a traceback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As uvicorn does: connections in TIME_WAIT from a previous run must not count as taken
        # (on Linux a port someone is listening on is still refused).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def serve(
    specs: list[ServiceSpec],
    *,
    host: str = "127.0.0.1",
    port: int = 8001,
    seed: int = 42,
    state_dir: Path | None = Path("var/farm"),
    access_log: bool = False,
) -> None:
    """Serve ``specs`` until interrupted. Logs where the admin token is, never the token."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(specs, seed=seed, state_dir=state_dir)
    token_file = app.state.admin_token_file
    where = token_file or "$GAUNTLET_ADMIN_TOKEN"
    log.info(
        "%d service(s) on http://%s:%d (seed %d); admin token: %s; credentials: %s",
        len(specs), host, port, seed, where,
        (state_dir / "credentials.json") if state_dir else "GET /admin/credentials",
    )  # fmt: skip
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            access_log=access_log,
            log_level="info",
            http=HTTP_PROTOCOL,
        )
    finally:
        app.farm.close()


@dataclass
class RunningFarm:
    """A farm served on loopback: where it is and how to administer it."""

    url: str
    admin_token: str
    credentials: dict[str, dict[str, dict[str, Any]]]
    app: FarmApp
    server: uvicorn.Server

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


@contextlib.asynccontextmanager
async def running_farm(
    specs: list[ServiceSpec],
    *,
    seed: int = 42,
    admin_token: str | None = None,
    state_dir: Path | None = None,
) -> AsyncIterator[RunningFarm]:
    """Serve ``specs`` with uvicorn on 127.0.0.1 (ephemeral port) in the running event loop."""
    app = create_app(specs, seed=seed, admin_token=admin_token, state_dir=state_dir)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
        http=HTTP_PROTOCOL,
    )
    server = uvicorn.Server(config)
    # Serving inside someone else's loop: leave the process's signal handlers alone.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(), name="gauntlet-farm")
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            if task.done():
                task.result()  # re-raise the startup error
            raise RuntimeError("farm server did not start within 5 s")
        port = server.servers[0].sockets[0].getsockname()[1]
        farm = app.farm
        yield RunningFarm(
            url=f"http://127.0.0.1:{port}",
            admin_token=farm.admin_token,
            credentials=farm.credentials.as_json()["services"],
            app=app,
            server=server,
        )
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=10)
        metrics.COLLECTOR.forget(app.farm)
        app.farm.close()
