"""The farm's socket-level front: transport faults an ASGI app alone cannot make.

An ASGI app never sees its socket, so it cannot reset a connection before answering (uvicorn
turns an exception before the response into a clean 500) and cannot send a TCP RST at all. The
front is uvicorn's own httptools protocol with one addition: each request's scope carries the
connection's transport under :data:`TRANSPORT_KEY`. It runs in the same process and on the same
port as the farm, costs one dict store per request, and lets the data plane:

- :func:`reset_connection` — abort with ``SO_LINGER`` 0, so the kernel sends a RST: before any
  byte of the answer this is a connection the client sees reset before its request was read
  (the request certainly did not happen); after a partial body it is a reset mid-body;
- :func:`close_connection` — close after a partial body (a FIN: a truncated response).

Served without the front (another ASGI server, a test client), the data plane falls back to
what an app can do alone (see ``farm.dataplane``); ``farm serve``, ``running_farm`` and the
benchmark always use it (:data:`HTTP_PROTOCOL`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import MutableMapping
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: The scope key under which the front puts the connection's transport.
TRANSPORT_KEY = "gauntlet.transport"
_LINGER_ZERO = struct.pack("ii", 1, 0)


class FarmHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus the transport in every request's scope."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope[TRANSPORT_KEY] = self.transport  # type: ignore[literal-required]


#: What to pass as uvicorn's ``http`` setting to serve the farm behind the front.
HTTP_PROTOCOL = FarmHttpProtocol


def transport_of(scope: MutableMapping[str, Any]) -> asyncio.Transport | None:
    """The connection's transport, when the farm is served behind the front."""
    return scope.get(TRANSPORT_KEY)


def reset_connection(transport: asyncio.Transport) -> None:
    """Abort the connection with a TCP RST (``SO_LINGER`` on, timeout 0), nothing more sent."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    transport.abort()


def close_connection(transport: asyncio.Transport) -> None:
    """Close the connection after what was written so far (a FIN: a truncated answer)."""
    transport.close()
