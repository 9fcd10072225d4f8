"""The reference AAM as a server (``gauntlet aam serve``): a :class:`~aam.Mesh` behind the
contract's HTTP endpoints (:mod:`aam.http_api`).

The bearer token comes from ``$GAUNTLET_AAM_TOKEN``; without it a random one is written to
``<state dir>/aam-token`` (mode 0600) and the path is logged, never the token.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from aam.http_api import contract_app
from aam.mesh import Mesh
from aam.profile import AamProfile

TOKEN_ENV = "GAUNTLET_AAM_TOKEN"
TOKEN_FILE = "aam-token"
log = logging.getLogger("aam.server")


def write_token_file(state_dir: Path, token: str) -> Path:
    """Write ``token`` to ``<state_dir>/aam-token``, readable by its owner only."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / TOKEN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode on O_CREAT: set it again
        os.write(fd, token.encode())
    finally:
        os.close(fd)
    return path


def resolve_token(state_dir: Path) -> tuple[str, Path | None]:
    """(token, the file it was written to or None when it came from the environment)."""
    from_env = os.environ.get(TOKEN_ENV, "").strip()
    if from_env:
        return from_env, None
    token = secrets.token_urlsafe(32)
    return token, write_token_file(state_dir, token)


def create_app(
    state_dir: Path,
    profile: AamProfile,
    token: str | None,
    opener: Callable[[], Awaitable[Any]] | None = None,
) -> Starlette:
    """The served app: the Mesh opens under ``state_dir`` with the app and closes with it.
    ``opener`` builds another AAM-under-test instead (the judge's mutants)."""
    holder: dict[str, Any] = {}

    class _Late:
        """Forwards the contract to the Mesh opened in the lifespan."""

        def __getattr__(self, name: str) -> object:
            return getattr(holder["mesh"], name)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        holder["mesh"] = await (opener() if opener else Mesh.open(state_dir, profile))
        try:
            yield
        finally:
            await holder["mesh"].aclose()

    app = Starlette(lifespan=lifespan)
    app.mount("/", contract_app(_Late(), token=token))  # type: ignore[arg-type]
    return app


def port_is_free(host: str, port: int) -> bool:
    """True when ``host:port`` can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8003,
    state_dir: Path = Path("var/aam-server"),
    profile: AamProfile | None = None,
    opener: Callable[[], Awaitable[Any]] | None = None,
) -> None:
    """Serve the reference AAM (blocking); ``opener`` serves another AAM-under-test instead."""
    import uvicorn

    token, written = resolve_token(state_dir)
    if written is not None:
        log.warning("AAM token written to %s (send it as Authorization: Bearer)", written)
    app = create_app(state_dir, profile or AamProfile(), token, opener)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
