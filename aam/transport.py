"""The HTTP seam: one small interface, two clients, failures classified the same way.

``HttpxTransport`` is httpx.AsyncClient over the httpx-aiohttp transport; ``AiohttpTransport``
is a bare aiohttp session. Both return a :class:`RawResponse` and raise :class:`TransportFailure`.
``NetworkProfile.http_client`` picks one; the benchmark (``make bench-aam``) measures both.

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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import aiohttp
import httpx
import orjson
from httpx_aiohttp import AiohttpTransport as _HttpxAiohttpTransport


@dataclass(frozen=True)
class NetworkProfile:
    """Timeouts and connection limits of one connector (not the farm's fault profile)."""

    connect_timeout: float = 2.0
    read_timeout: float = 1.0
    write_timeout: float = 2.0
    pool_timeout: float = 5.0
    max_connections: int = 64
    keepalive_seconds: float = 30.0
    #: ``aiohttp`` (default: measured ~2x faster here) or ``httpx`` (httpx over httpx-aiohttp).
    http_client: Literal["aiohttp", "httpx"] = "aiohttp"

    def httpx_timeout(self) -> httpx.Timeout:
        """The same timeouts as an ``httpx.Timeout``."""
        return httpx.Timeout(
            connect=self.connect_timeout,
            read=self.read_timeout,
            write=self.write_timeout,
            pool=self.pool_timeout,
        )


@dataclass(frozen=True, slots=True)
class RawResponse:
    """A complete HTTP response: status, case-insensitive headers, the whole body."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes
    method: str
    path: str


class HttpTransport(Protocol):
    """What a connector needs from an HTTP client."""

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        data: dict[str, str] | None = None,
    ) -> RawResponse:
        """Send one request, read the whole body; raise :class:`TransportFailure` on failure."""
        ...

    async def aclose(self) -> None:
        """Close the connection pool."""
        ...


def error_code(response: RawResponse) -> str | None:
    """The machine-readable code of an error body, in the shapes providers use: ``{"error":
    "invalid_token"}``, Stripe's ``{"error": {"code"}}``, HubSpot's ``{"subCategory"}``,
    Salesforce's ``[{"errorCode"}]`` (lower-cased). ``None`` when there is none."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    code: Any = None
    if isinstance(body, dict):
        code = body.get("error")
        if isinstance(code, dict):
            code = code.get("code") or code.get("type")
        if not isinstance(code, str):
            code = body.get("subCategory")
    elif isinstance(body, list) and body and isinstance(body[0], dict):
        code = body[0].get("errorCode")
        code = code.lower() if isinstance(code, str) else None
    return code[:80] if isinstance(code, str) else None


#: Words that mark a 403 as a rate limit (GitHub secondary limits, Salesforce).
_LIMIT_WORDS = (b"rate limit", b"limit exceeded", b"limit_exceeded", b"rate_limit")


def is_rate_limit(response: RawResponse) -> bool:
    """A 429, or a 403 that is a rate limit as GitHub and Salesforce word it: the body says so
    ("secondary rate limit", ``REQUEST_LIMIT_EXCEEDED``) or ``X-RateLimit-Remaining`` is 0. A
    ``Retry-After`` alone does not make a 403 a rate limit."""
    if response.status_code == 429:
        return True
    if response.status_code != 403:
        return False
    if response.headers.get("x-ratelimit-remaining") == "0":
        return True
    text = response.content[:2000].lower()
    return any(word in text for word in _LIMIT_WORDS)


def make_transport(base_url: str, network: NetworkProfile) -> HttpTransport:
    """The transport ``network.http_client`` names."""
    if network.http_client == "httpx":
        return HttpxTransport(base_url, network)
    return AiohttpTransport(base_url, network)


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


class HttpxTransport:
    """httpx.AsyncClient over httpx-aiohttp: keep-alive pool, timeouts, classified failures."""

    def __init__(self, base_url: str, network: NetworkProfile) -> None:
        self.network = network
        self._timeout = network.httpx_timeout()
        session_factory = _SessionFactory(network)
        self._client = httpx.AsyncClient(
            base_url=base_url,
            transport=_HttpxAiohttpTransport(client=session_factory),
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
    ) -> RawResponse:
        """Send one request and read the whole body; raises :class:`TransportFailure`."""
        try:
            r = await self._client.request(
                method, url, params=params, headers=headers, content=content, data=data
            )
        except (httpx.TransportError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise classify_transport_error(exc) from exc
        return RawResponse(r.status_code, r.headers, r.content, method, r.request.url.path)

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

    async def aclose(self) -> None:
        """Close the session if one was made."""
        if self._session is not None and not self._session.closed:
            await self._session.close()


class AiohttpTransport:
    """A bare aiohttp session: the same contract as :class:`HttpxTransport`, less overhead."""

    def __init__(self, base_url: str, network: NetworkProfile) -> None:
        self.network = network
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=network.pool_timeout,
            sock_connect=network.connect_timeout,
            sock_read=network.read_timeout,
        )
        self._factory = _SessionFactory(network)

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        data: dict[str, str] | None = None,
    ) -> RawResponse:
        """Send one request and read the whole body; raises :class:`TransportFailure`."""
        target = url if url.startswith(("http://", "https://")) else self._base + url
        try:
            async with self._factory().request(
                method,
                target,
                params=_query(params),
                headers=headers,
                data=content if content is not None else data,
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                body = await resp.read()
                return RawResponse(resp.status, resp.headers, body, method, resp.url.path)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise classify_transport_error(exc) from exc

    async def aclose(self) -> None:
        """Close the pool."""
        await self._factory.aclose()


def _query(params: Any) -> Any:
    """aiohttp takes str/int/float query values only: render the rest as httpx would."""
    if not params or not isinstance(params, Mapping):
        return params
    out: dict[str, str] = {}
    for key, value in params.items():
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif value is None:
            out[key] = ""
        else:
            out[key] = str(value)
    return out
