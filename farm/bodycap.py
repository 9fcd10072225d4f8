"""Request body caps enforced before the body is read (ASGI level, no framework needed).

A ``Content-Length`` over the cap is refused with ``413`` and the body is never read; a body
without one (chunked) is read through :func:`capped_receive`, which raises
:class:`BodyTooLarge` as soon as the running total passes the cap. Either way, memory stays at
the cap however large the body a client sends, authenticated or not. The backend uses the same
helpers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyTooLarge(Exception):
    """The request body passed the cap while being read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body over {limit} bytes")
        self.limit = limit


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


def capped_receive(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises :class:`BodyTooLarge` once more than ``limit`` bytes came in."""
    total = 0

    async def capped() -> Message:
        nonlocal total
        message = await receive()
        if message["type"] == "http.request":
            total += len(message.get("body", b""))
            if total > limit:
                raise BodyTooLarge(limit)
        return message

    return capped
