"""OAuth2 client-credentials token requests (RFC 6749 section 4.4) over a connector's transport.

Every answer is classified into the AAM's error tree: a refused client (400/401/403) is
``InvalidCredentials`` — never retried — and anything else that is not a usable token is the
class of what went wrong. Each request is written to the call log; the secret never is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson

from aam.credentials import IssuedToken
from aam.errors import (
    CallTimeout,
    ClientError,
    InvalidCredentials,
    NetworkError,
    RateLimited,
    ServerError,
)
from aam.transport import HttpTransport, TransportFailure, error_code

#: Logs one token request: (path, http status or None, error class or None, latency seconds).
TokenRequestLog = Callable[[str, int | None, str | None, float], None]


def token_error_class(status: int) -> str | None:
    """The error class a token-endpoint answer becomes (``None`` for success)."""
    if status < 400:
        return None
    if status in (400, 401, 403):
        return "invalid_creds"
    if status == 429:
        return "rate_limit"
    return "server_error" if status >= 500 else "client_error"


class ClientCredentialsGrant:
    """Fetches tokens for one (service, tenant); an instance is a ``TokenFetcher``."""

    def __init__(
        self,
        transport: HttpTransport,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        connector_id: str,
        log: TokenRequestLog,
        scope: str | None = None,
    ) -> None:
        self._transport = transport
        self.token_url = token_url
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }
        if scope:
            self._form["scope"] = scope
        self.connector_id = connector_id
        self._log = log
        self._log_path = urlsplit(token_url).path or token_url  # never a query string

    def __repr__(self) -> str:
        return f"ClientCredentialsGrant({self.connector_id!r}, token_url={self.token_url!r})"

    async def __call__(self) -> IssuedToken:
        """Request a token; raises an ``AamError`` leaf."""
        started = time.perf_counter()
        try:
            response = await self._transport.request("POST", self.token_url, data=self._form)
        except TransportFailure as failure:
            self._log(self._log_path, None, failure.error_class, time.perf_counter() - started)
            cls = CallTimeout if failure.error_class == "timeout" else NetworkError
            raise cls(f"token endpoint: {failure}", connector_id=self.connector_id) from None
        status = response.status_code
        self._log(self._log_path, status, token_error_class(status), time.perf_counter() - started)
        kw: dict[str, Any] = {"connector_id": self.connector_id, "status": status}
        if status in (400, 401, 403):
            code = error_code(response)
            raise InvalidCredentials(f"token endpoint refused the credentials ({code})", **kw)
        if status == 429:
            raise RateLimited("token endpoint rate limited", **kw)
        if status >= 500:
            raise ServerError("token endpoint failed", **kw)
        if status >= 400:
            raise ClientError(f"token endpoint answered {status}", **kw)
        try:
            payload = orjson.loads(response.content)
            return IssuedToken(
                access_token=str(payload["access_token"]),
                expires_in=float(payload.get("expires_in") or 3600),
                refresh_token=payload.get("refresh_token"),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise ServerError("token endpoint sent an unusable answer", **kw) from None
