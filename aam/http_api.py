"""The AAM-under-test contract over HTTP, served for any in-process ``AamUnderTest``.

``gauntlet aam serve`` puts the reference AAM behind it; a user's own AAM, in any language,
implements the same five calls (``aam/README.md``, "Over HTTP"):

| call | meaning |
|---|---|
| ``GET /health`` | 200 when ready (no token needed) |
| ``PUT /gauntlet/v1/connectors/{connector_id}`` | create or replace a connector from a descriptor |
| ``DELETE /gauntlet/v1/connectors`` | drop every connector |
| ``POST /gauntlet/v1/calls`` | one operation; 200 with an outcome for any AAM-level failure |
| ``POST /gauntlet/v1/dlq/replay`` | replay parked writes: ``{"replayed", "failed", "pending"}`` |

Everything but ``/health`` wants ``Authorization: Bearer <token>`` when a token is set. Bad input
is a 4xx with ``{"error", "detail"}`` naming the field; never a 500 for the caller's mistake.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aam.contract import AamUnderTest, Operation
from aam.descriptor import ConnectorDescriptor

#: Largest request body accepted (a descriptor with many resources, or a big write).
MAX_BODY_BYTES = 4 * 1024 * 1024
PREFIX = "/gauntlet/v1"
_JSON = "application/json"


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=_JSON)


def _error(status: int, error: str, detail: str) -> Response:
    return _json({"error": error, "detail": detail}, status)


def _validation_detail(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:10]:
        where = ".".join(str(p) for p in e.get("loc", ())) or "(body)"
        parts.append(f"{where}: {e.get('msg')}")
    return "; ".join(parts)


async def _body(request: Request) -> Any | Response:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        return _error(413, "too_large", f"body over {MAX_BODY_BYTES} bytes")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _error(400, "invalid_json", f"request body is not JSON: {exc}")


Handler = Callable[[Request], Awaitable[Response]]


def contract_app(aam: AamUnderTest, *, token: str | None) -> Starlette:
    """An ASGI app serving ``aam`` on the contract's endpoints (mountable under another app)."""
    expected = token.encode() if token else None

    def guarded(handler: Handler) -> Handler:
        async def check(request: Request) -> Response:
            if expected is not None:
                scheme, _, presented = request.headers.get("authorization", "").partition(" ")
                if scheme.lower() != "bearer" or not presented.strip():
                    return Response(
                        orjson.dumps(
                            {
                                "error": "unauthorized",
                                "detail": "send Authorization: Bearer <token>",
                            }
                        ),
                        status_code=401,
                        media_type=_JSON,
                        headers={"WWW-Authenticate": "Bearer"},
                    )
                if not hmac.compare_digest(presented.strip().encode(), expected):
                    return _error(403, "forbidden", "wrong AAM token")
            return await handler(request)

        return check

    async def health(_: Request) -> Response:
        return _json({"status": "ok"})

    async def put_connector(request: Request) -> Response:
        body = await _body(request)
        if isinstance(body, Response):
            return body
        try:
            descriptor = ConnectorDescriptor.model_validate(body)
        except ValidationError as exc:
            return _error(422, "invalid_descriptor", _validation_detail(exc))
        path_id = request.path_params["connector_id"]
        if descriptor.connector_id != path_id:
            return _error(
                422,
                "invalid_descriptor",
                f"connector_id: the body says {descriptor.connector_id!r}, the path {path_id!r}",
            )
        await aam.put_connector(descriptor)
        return _json({"connector_id": descriptor.connector_id})

    async def drop_connectors(_: Request) -> Response:
        await aam.drop_connectors()
        return _json({"dropped": True})

    async def call(request: Request) -> Response:
        body = await _body(request)
        if isinstance(body, Response):
            return body
        try:
            operation = Operation.model_validate(body)
        except ValidationError as exc:
            return _error(422, "invalid_operation", _validation_detail(exc))
        outcome = await aam.call(operation)
        return Response(
            orjson.dumps(outcome.model_dump(exclude_none=True)),
            status_code=200,
            media_type=_JSON,
        )

    async def replay(_: Request) -> Response:
        counts = await aam.replay_dlq()
        return _json(counts.model_dump())

    routes = [
        Route("/health", health, methods=["GET"]),
        Route(f"{PREFIX}/connectors/{{connector_id}}", guarded(put_connector), methods=["PUT"]),
        Route(f"{PREFIX}/connectors", guarded(drop_connectors), methods=["DELETE"]),
        Route(f"{PREFIX}/calls", guarded(call), methods=["POST"]),
        Route(f"{PREFIX}/dlq/replay", guarded(replay), methods=["POST"]),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(404, "not_found", f"no route {request.method} {request.url.path}")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return _error(405, "method_not_allowed", f"{request.method} {request.url.path}")

    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed})
