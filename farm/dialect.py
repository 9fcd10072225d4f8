"""Provider dialects: how a service words its refusals, on top of its rate-limit header style.

Real providers disagree on the details a client must get right: GitHub answers a secondary rate
limit with ``403`` and a ``message``; Salesforce returns a list of ``{"message", "errorCode"}``
(``INVALID_SESSION_ID``, ``REQUEST_LIMIT_EXCEEDED``); Stripe wraps errors in an object
(``{"error": {"type", "code", "message"}}``) and sends no ``Retry-After``; Shopify says
``Retry-After: 2.0``; HubSpot has ``{"status": "error", "category": ...}``. A service's
``dialect`` picks its wording; the farm's pipeline always produces its own plain refusal
(``{"error": <code>, "detail": ...}``) and :meth:`DialectShaper.shape` rewrites it just before
it is sent. Machine-readable codes survive in each provider's own field (Stripe ``code``,
Salesforce ``errorCode``, HubSpot ``subCategory``); GitHub's are words in ``message``.
"""

from __future__ import annotations

import email.utils
import math
import time
from typing import Any

import orjson

from farm.spec import Dialect, ErrorStyle, RetryAfterFormat

Headers = list[tuple[bytes, bytes]]

GITHUB_DOCS = "https://docs.github.com/rest"
GITHUB_MESSAGES = {
    "invalid_token": "Bad credentials",
    "forbidden": "Resource not accessible by integration",
    "rate_limited": "You have exceeded a secondary rate limit. Please wait a few minutes before "
    "you try again.",
    "not_found": "Not Found",
}
SALESFORCE_CODES = {
    "invalid_token": "INVALID_SESSION_ID",
    "forbidden": "INSUFFICIENT_ACCESS",
    "rate_limited": "REQUEST_LIMIT_EXCEEDED",
    "not_found": "NOT_FOUND",
    "invalid_request": "MALFORMED_QUERY",
    "invalid_json": "JSON_PARSER_ERROR",
    "invalid_body": "JSON_PARSER_ERROR",
    "cursor_expired": "INVALID_QUERY_LOCATOR",
    "injected_fault": "SERVER_UNAVAILABLE",
    "bad_gateway": "SERVER_UNAVAILABLE",
    "gateway_timeout": "SERVER_UNAVAILABLE",
}
SALESFORCE_MESSAGES = {
    "invalid_token": "Session expired or invalid",
    "rate_limited": "TotalRequests Limit exceeded.",
}
STRIPE_TYPES = {401: "authentication_error", 403: "invalid_request_error", 429: "rate_limit_error"}
HUBSPOT_CATEGORIES = {
    401: "INVALID_AUTHENTICATION",
    403: "MISSING_SCOPES",
    404: "OBJECT_NOT_FOUND",
    409: "CONFLICT",
    429: "RATE_LIMITS",
}


def _http_date(seconds: float, now: float | None = None) -> str:
    """An HTTP date ``seconds`` from now, rounded up: a whole-second date must never ask a
    client to wait less than the delay meant."""
    moment = math.ceil((time.time() if now is None else now) + seconds)
    return email.utils.formatdate(moment, usegmt=True)


class DialectShaper:
    """Rewrites one service's refusals into its provider's words."""

    __slots__ = ("dialect", "plain")

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        #: True when nothing is rewritten (the hot path skips the shaper).
        self.plain = dialect == Dialect()

    def status(self, status: int, error: str | None) -> int:
        """The status a refusal is sent with (a rate limit may be a 403)."""
        if status == 429 and self.dialect.rate_limit_status != 429:
            return self.dialect.rate_limit_status
        return status

    def headers(self, headers: Headers, status: int) -> Headers:
        """``Retry-After`` in the dialect's format (or dropped)."""
        fmt = self.dialect.retry_after
        if fmt is RetryAfterFormat.seconds:
            return headers
        out: Headers = []
        for name, value in headers:
            if name != b"retry-after":
                out.append((name, value))
                continue
            if fmt is RetryAfterFormat.omit and status in (403, 429):
                continue  # rate limits say nothing about when to come back (Stripe)
            seconds = float(value)
            if fmt is RetryAfterFormat.float:
                out.append((name, f"{seconds:.1f}".encode()))
            elif fmt is RetryAfterFormat.http_date:
                out.append((name, _http_date(seconds).encode()))
            else:
                out.append((name, value))
        return out

    def body(self, status: int, body: bytes, request_id: bytes) -> bytes:
        """The refusal body in the dialect's shape (only ``{"error": ...}`` bodies change)."""
        style = self.dialect.errors
        if style is ErrorStyle.default or status < 400:
            return body
        try:
            plain = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body
        if not isinstance(plain, dict) or not isinstance(plain.get("error"), str):
            return body
        code: str = plain["error"]
        detail = str(plain.get("detail") or plain.get("error_description") or code)
        shaped: Any
        if style is ErrorStyle.github:
            message = GITHUB_MESSAGES.get(code, detail)
            shaped = {"message": message, "documentation_url": GITHUB_DOCS}
        elif style is ErrorStyle.salesforce:
            error_code = SALESFORCE_CODES.get(code, code.upper())
            shaped = [{"message": SALESFORCE_MESSAGES.get(code, detail), "errorCode": error_code}]
        elif style is ErrorStyle.stripe:
            kind = STRIPE_TYPES.get(status) or (
                "api_error" if status >= 500 else "invalid_request_error"
            )
            if code.startswith("idempotency_key"):
                kind = "idempotency_error"
            shaped = {"error": {"type": kind, "code": code, "message": detail}}
        elif style is ErrorStyle.shopify:
            shaped = {"errors": detail}
        else:  # hubspot
            category = HUBSPOT_CATEGORIES.get(status) or (
                "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR"
            )
            shaped = {
                "status": "error",
                "message": detail,
                "correlationId": request_id.decode("latin-1"),
                "category": category,
                "subCategory": code,
            }
        return orjson.dumps(shaped)
