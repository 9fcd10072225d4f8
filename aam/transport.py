"""The HTTP seam: httpx.AsyncClient over the httpx-aiohttp transport, failures classified.

httpx is the client API; aiohttp does the I/O (raw httpx measured 110-250 req/s at 32 callers
here, encode/httpx#3215; over aiohttp ~4x that). httpx-aiohttp maps every
``aiohttp.ClientConnectionError`` to ``httpx.ConnectTimeout`` — a server that closes mid-response
would read as a *timeout* — so :func:`classify_transport_error` looks at the original aiohttp
exception (``__cause__``) first:

- no connection made (refused, reset before sending) → ``network_error``, request *not sent*;
- connection dropped before a complete response → ``network_error``, request *maybe sent*;
- read stalled past the read timeout → ``timeout``, maybe sent; pool wait → ``timeout``, not sent.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport


@dataclass(frozen=True)
class NetworkProfile:
    """Timeouts and connection limits of one connector (not the farm's fault profile)."""

    connect_timeout: float = 2.0
    read_timeout: float = 1.0
    write_timeout: float = 2.0
    pool_timeout: float = 5.0
    max_connections: int = 64
    keepalive_seconds: float = 30.0

    def httpx_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_timeout,
            read=self.read_timeout,
            write=self.write_timeout,
            pool=self.pool_timeout,
        )


@dataclass(frozen=True)
class TransportFailure(Exception):
    """An attempt that produced no complete HTTP response."""

    error_class: str  # network_error | timeout
    maybe_sent: bool  # could the server have received (and acted on) the request?
    detail: str

    def __str__(self) -> str:
        return f"{self.error_class}: {self.detail}"


def classify_transport_error(exc: BaseException) -> TransportFailure:
    """Map an httpx/aiohttp/asyncio exception to a :class:`TransportFailure`."""
    cause = exc.__cause__ if isinstance(exc, httpx.HTTPError) and exc.__cause__ else exc
    detail = f"{type(cause).__name__}: {cause}"[:300]
    # Order matters: aiohttp's timeout errors are also ClientConnectionErrors.
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        return TransportFailure("timeout", False, detail)
    if isinstance(cause, aiohttp.SocketTimeoutError | aiohttp.ServerTimeoutError):
        return TransportFailure("timeout", True, detail)
    if isinstance(cause, aiohttp.ClientConnectorError):
        return TransportFailure("network_error", False, detail)
    if isinstance(cause, aiohttp.ClientPayloadError | aiohttp.ClientConnectionError):
        return TransportFailure("network_error", True, detail)
    if isinstance(cause, httpx.PoolTimeout):
        return TransportFailure("timeout", False, detail)
    if isinstance(cause, httpx.ConnectTimeout):
        return TransportFailure("timeout", False, detail)
    if isinstance(cause, httpx.TimeoutException | asyncio.TimeoutError | TimeoutError):
        return TransportFailure("timeout", True, detail)
    if isinstance(cause, httpx.ConnectError):
        return TransportFailure("network_error", False, detail)
    return TransportFailure("network_error", True, detail)


class HttpTransport:
    """One connector's HTTP client: keep-alive pool, timeouts, classified failures."""

    def __init__(self, base_url: str, network: NetworkProfile) -> None:
        self.network = network
        self._timeout = network.httpx_timeout()
        session_factory = _SessionFactory(network)
        self._client = httpx.AsyncClient(
            base_url=base_url,
            transport=AiohttpTransport(client=session_factory),
            timeout=self._timeout,
            follow_redirects=False,
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        data: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request and read the whole body; raises :class:`TransportFailure`."""
        try:
            return await self._client.request(
                method, url, params=params, headers=headers, content=content, data=data
            )
        except (httpx.TransportError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise classify_transport_error(exc) from exc

    async def aclose(self) -> None:
        """Close the pool."""
        await self._client.aclose()


class _SessionFactory:
    """Creates the aiohttp session lazily, inside the running loop, with our pool limits."""

    def __init__(self, network: NetworkProfile) -> None:
        self._network = network
        self._session: aiohttp.ClientSession | None = None

    def __call__(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._network.max_connections,
                keepalive_timeout=self._network.keepalive_seconds,
            )
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session
