"""The farm's ASGI application: admin, token and ops routes on FastAPI; data routes in front.

``create_app(specs)`` builds the runtime state (:class:`farm.state.Farm`) and a :class:`FarmApp`.
Data paths (every endpoint of every spec, compiled into :class:`farm.routes.RouteTable` at
start-up) are answered by :class:`farm.dataplane.DataPlane` before FastAPI's router is consulted;
everything else goes through FastAPI. Every error is JSON ``{"error", "detail"}``, never a
traceback.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from farm.admin import FarmError, admin, json_response, public
from farm.admin_openapi import complete
from farm.bodycap import capped
from farm.credentials import write_private
from farm.dataplane import (
    DataPlane,
    Message,
    Receive,
    Scope,
    Send,
    install_log_filter,
)
from farm.loader import format_loc
from farm.openapi import service_openapi
from farm.spec import ServiceSpec
from farm.state import Farm
from farm.store import StateDirError, private_dir

log = logging.getLogger("farm")
ADMIN_TOKEN_ENV = "GAUNTLET_ADMIN_TOKEN"
ADMIN_TOKEN_FILE = "admin-token"
#: Admin and token bodies are small JSON or form documents.
MAX_ADMIN_BODY_BYTES = 64 * 1024


class FarmApp(FastAPI):
    """FastAPI with the data plane in front: a data path never reaches FastAPI's router.

    Every other route gets a body cap enforced before the body is read (``Content-Length``
    over :data:`MAX_ADMIN_BODY_BYTES` is refused unread; a chunked body is cut off there), and
    every ``/admin`` answer carries the farm's identity headers (boot id, epoch, ledger seq).
    """

    farm: Farm
    data_plane: DataPlane
    service_docs: dict[str, bytes]  # {base_path}/openapi.json -> the service's OpenAPI document

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            doc = self.service_docs.get(scope["path"])
            if doc is not None:
                await _send_document(send, scope["method"], doc)
                return
            match = self.farm.routes.match(scope["path"])
            if match is not None:
                await self.data_plane(scope, receive, send, match)
                return
            bounded = await capped(scope, receive, send, MAX_ADMIN_BODY_BYTES)
            if bounded is None:
                return
            receive = bounded
            if scope["path"].startswith("/admin"):
                send = self._with_identity(send)
        await super().__call__(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document completed with the statuses and shapes really answered
        (``farm/admin_openapi.py``); data routes: ``{base_path}/openapi.json``."""
        if self.openapi_schema is None:
            complete(super().openapi())
        assert self.openapi_schema is not None
        return self.openapi_schema

    def _with_identity(self, send: Send) -> Send:
        farm = self.farm

        async def identified(message: Message) -> None:
            if message["type"] == "http.response.start":
                ident = farm.identity()
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-farm-boot-id", ident["boot_id"].encode()),
                    (b"x-farm-epoch", str(ident["epoch"]).encode()),
                    (b"x-farm-ledger-seq", str(ident["ledger_seq"]).encode()),
                    (b"x-farm-attempt-seq", str(ident["attempt_seq"]).encode()),
                ]
            await send(message)

        return identified


async def _send_document(send: Send, method: str, doc: bytes) -> None:
    """A service's OpenAPI document (no auth: it is what the provider publishes)."""
    if method not in ("GET", "HEAD"):
        body = orjson.dumps({"error": "method_not_allowed", "detail": f"{method} is not served"})
        headers = [(b"allow", b"GET, HEAD")]
        status = 405
    else:
        body, headers, status = doc, [], 200
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body if method != "HEAD" else b""})


def resolve_admin_token(admin_token: str | None, state_dir: Path | None) -> tuple[str, Path | None]:
    """The admin token: the argument, else ``$GAUNTLET_ADMIN_TOKEN``, else the one in
    ``<state dir>/admin-token`` (kept across restarts), else a generated one written there (mode
    0600). Returns the token and that file, if any."""
    token = admin_token or os.environ.get(ADMIN_TOKEN_ENV) or None
    if token:
        return token, None
    import secrets

    if state_dir is None:
        return secrets.token_urlsafe(32), None
    path = state_dir / ADMIN_TOKEN_FILE
    try:
        kept = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        kept = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise StateDirError(f"state dir {state_dir}: cannot read {path} ({exc})") from None
    if kept:
        return kept, path
    token = secrets.token_urlsafe(32)
    try:
        write_private(path, token.encode() + b"\n")
    except OSError as exc:
        raise StateDirError(
            f"state dir {state_dir}: cannot write {path} ({exc.strerror})"
        ) from None
    return token, path


def create_app(
    specs: list[ServiceSpec],
    *,
    seed: int = 42,
    admin_token: str | None = None,
    state_dir: Path | None = None,
) -> FarmApp:
    """The farm app serving ``specs``. ``app.state.farm`` is the runtime state (tests use it).
    :class:`farm.store.StateDirError` if ``state_dir`` cannot hold the farm's files."""
    if state_dir is not None:
        private_dir(state_dir)
    token, token_file = resolve_admin_token(admin_token, state_dir)
    farm = Farm(specs, seed=seed, admin_token=token, state_dir=state_dir)
    app = FarmApp(
        title="AAM Gauntlet — Synthetic API Farm",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.farm = farm
    app.data_plane = DataPlane(farm)
    app.service_docs = {
        f"{spec.base_path}/openapi.json": orjson.dumps(service_openapi(spec)) for spec in specs
    }
    app.state.farm = farm
    app.state.admin_token_file = token_file
    app.include_router(public)
    app.include_router(admin)
    _install_error_handlers(app)
    install_log_filter()
    if token_file is not None:
        log.info("admin token written to %s", token_file)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FarmError)
    async def farm_error(_: Request, exc: FarmError) -> Response:
        return json_response(
            {"error": exc.error, "detail": exc.detail, **exc.extra}, exc.status_code, exc.headers
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        names = {404: "not_found", 405: "method_not_allowed"}
        error = names.get(exc.status_code, "http_error")
        return json_response({"error": error, "detail": exc.detail}, exc.status_code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        problems: list[dict[str, Any]] = [
            {"field": format_loc(e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return json_response(
            {"error": "invalid_request", "detail": detail, "problems": problems}, 422
        )

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unexpected error")
        return json_response({"error": "internal", "detail": type(exc).__name__}, 500)
