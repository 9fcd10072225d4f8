"""What one attempt came to: the failure table that maps HTTP answers to the error tree.

``classify_status`` is the single place that decides, for a non-2xx answer, which error class it
is, whether a retry can help, and whether a write may have taken effect (``maybe_committed``:
the question that decides if a POST may be sent again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aam.errors import (
    AamError,
    AuthExpired,
    ClientError,
    InvalidCredentials,
    RateLimited,
    ServerError,
)
from aam.ratelimit import parse_retry_after
from aam.transport import RawResponse, error_code, is_rate_limit


@dataclass
class Failure:
    """An attempt that did not succeed, and what may be done about it."""

    error: AamError
    retryable: bool
    maybe_committed: bool  # could a write have taken effect on the server?
    auth_version: int | None = None  # set for a 401 on an OAuth2 token
    retry_after: float | None = None


@dataclass
class Found:
    """A record found by lookup: an earlier ambiguous write did take effect."""

    record: dict[str, Any]


def classify_status(
    response: RawResponse,
    *,
    connector_id: str,
    token_version: int | None,
    oauth: bool,
    idempotency_key: str | None,
) -> Failure:
    """Classify a 4xx/5xx answer.

    401 with an OAuth2 token is ``auth_expired`` (the caller may refresh once); 401 otherwise
    and 403 are ``invalid_creds``; 429 (and a 403 that is a rate limit, as GitHub and Salesforce
    send) is ``rate_limit`` (never processed, so always safe to
    send again); 5xx is ``server_error`` (maybe committed); 409 ``idempotency_key_in_flight``
    means "ask again shortly"; any other 4xx is a final ``client_error``.
    """
    status = response.status_code
    reason = error_code(response)
    where = f"{response.method} {response.path} -> {status}"
    kw: dict[str, Any] = {"connector_id": connector_id, "status": status, "reason": reason}
    if status == 401:
        if oauth:
            error: AamError = AuthExpired(f"{where}: token refused ({reason})", **kw)
            return Failure(error, False, False, auth_version=token_version)
        return Failure(InvalidCredentials(f"{where}: credentials refused", **kw), False, False)
    if status == 403 and not is_rate_limit(response):
        return Failure(InvalidCredentials(f"{where}: forbidden ({reason})", **kw), False, False)
    if status in (403, 429):
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        error = RateLimited(f"{where}: rate limited", retry_after=retry_after, **kw)
        return Failure(error, True, False, retry_after=retry_after)
    if status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return Failure(ServerError(f"{where} ({reason})", **kw), True, True, None, retry_after)
    if status == 409 and idempotency_key is not None and reason == "idempotency_key_in_flight":
        # The first send of this key is still being processed: ask again shortly.
        return Failure(ClientError(f"{where} ({reason})", **kw), True, True)
    return Failure(ClientError(f"{where} ({reason})", **kw), False, False)
