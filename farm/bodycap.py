"""Request body caps enforced before the body is read (ASGI level, no framework needed).

A ``Content-Length`` over the cap is refused with ``413`` and the body is never read; a body
without one (chunked) is read up to the cap and refused as soon as it passes it. Either way,
memory stays at the cap however large the body a client sends, authenticated or not; the app
then gets the body from memory. The farm (non-data routes) and the backend use the same code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def body_cap_refusal(
    headers: list[tuple[bytes, bytes]] | Any, limit: int
) -> tuple[int, dict[str, Any]] | None:
    """A ``(status, body)`` refusal when the declared ``Content-Length`` is invalid or over
    ``limit``; ``None`` when the request may be read."""
    for name, value in headers:
        if name == b"content-length":
            raw = value.strip()
            if not raw.isdigit() or not raw.isascii() or len(raw) > 18:
                return 400, {"error": "invalid_request", "detail": "malformed Content-Length"}
            if int(raw) > limit:
                return 413, {"error": "payload_too_large", "detail": f"body over {limit} bytes"}
    return None


async def send_refusal(send: Send, status: int, body: dict[str, Any]) -> None:
    """Answer without reading the body; the connection is closed after it."""
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def read_capped(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or ``None`` as soon as it passes ``limit`` (the rest is never
    read). Memory stays at ``limit`` whatever the client sends."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client left: what came so far is all there is
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app ``body`` (already read) in one message, then defers to
    the real one (which reports the disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def capped(scope: Any, receive: Receive, send: Send, limit: int) -> Receive | None:
    """Check the declared length, read the body up to ``limit``, and return a ``receive`` that
    replays it; ``None`` when a refusal (400/413) has been sent instead."""
    refusal = body_cap_refusal(scope["headers"], limit)
    if refusal is not None:
        await send_refusal(send, *refusal)
        return None
    body = await read_capped(receive, limit)
    if body is None:
        too_large = {"error": "payload_too_large", "detail": f"body over {limit} bytes"}
        await send_refusal(send, 413, too_large)
        return None
    return replaying(body, receive)


class BodyCapMiddleware:
    """ASGI middleware: every HTTP request body capped at ``limit`` before the app sees it."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        bounded = await capped(scope, receive, send, self.limit)
        if bounded is not None:
            await self.app(scope, bounded, send)
