"""The AAM's error classes: one tree, every surfaced failure is exactly one leaf.

Callers catch a family (:class:`AamError`) or a leaf. ``error_class`` is the stable name used in
the call log, the metrics and the scorecard.
"""

from __future__ import annotations

from typing import ClassVar

#: Every error class name, in the order the scorecard lists them.
ERROR_CLASSES = (
    "auth_expired",
    "invalid_creds",
    "rate_limit",
    "network_error",
    "server_error",
    "timeout",
    "client_error",
    "schema_drift",
)


class AamError(Exception):
    """Base of every failure the AAM surfaces."""

    error_class: ClassVar[str] = "aam_error"

    def __init__(
        self,
        message: str,
        *,
        connector_id: str | None = None,
        status: int | None = None,
        attempts: int = 0,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.connector_id = connector_id
        self.status = status
        self.attempts = attempts
        #: A short machine-readable detail, e.g. ``circuit_open`` or ``idempotency_key_reuse``.
        self.reason = reason
        #: A write that failed here but was parked in the dead-letter queue for a later replay.
        self.deferred = False

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self)!r}, connector_id={self.connector_id!r}, "
            f"status={self.status!r}, attempts={self.attempts}, reason={self.reason!r})"
        )


class AuthExpired(AamError):
    """A token was refused as expired or rotated and could not be renewed in time."""

    error_class = "auth_expired"


class InvalidCredentials(AamError):
    """The credentials themselves are wrong or not allowed; never retried."""

    error_class = "invalid_creds"


class RateLimited(AamError):
    """The server answered 429 on every allowed attempt."""

    error_class = "rate_limit"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class NetworkError(AamError):
    """The connection failed or closed without a complete HTTP response."""

    error_class = "network_error"


class ServerError(AamError):
    """The server answered 5xx (or an unusable 2xx body)."""

    error_class = "server_error"


class CallTimeout(AamError):
    """No complete response within the network profile's timeouts."""

    error_class = "timeout"


class ClientError(AamError):
    """The server refused the request as malformed (4xx other than 401/403/429)."""

    error_class = "client_error"


class SchemaDrift(AamError):
    """The response's shape changed in a way that cannot be mapped back safely."""

    error_class = "schema_drift"


_BY_CLASS: dict[str, type[AamError]] = {
    cls.error_class: cls
    for cls in (
        AuthExpired,
        InvalidCredentials,
        RateLimited,
        NetworkError,
        ServerError,
        CallTimeout,
        ClientError,
        SchemaDrift,
    )
}


def error_type(error_class: str) -> type[AamError]:
    """The leaf exception type for an ``error_class`` name (``KeyError`` if unknown)."""
    return _BY_CLASS[error_class]
