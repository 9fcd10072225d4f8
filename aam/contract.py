"""The AAM-under-test contract (v1): operations, outcomes and the ``AamUnderTest`` protocol.

Any AAM the Gauntlet judges speaks this, in-process (a Python object with these methods; the
reference :class:`aam.Mesh` is one) or over HTTP (``workflows.aam_http`` drives a server). The
shapes are the JSON of DESIGN.md:

```json
{"connector_id": "stripe:acme", "method": "GET", "path": "/invoices/inv_000042"}
{"connector_id": "stripe:acme", "method": "GET", "path": "/invoices", "params": {"limit": 50},
 "paginate": true, "max_records": 500, "require": ["amount"]}
{"connector_id": "stripe:acme", "method": "POST", "path": "/invoices", "body": {"amount": 5},
 "operation_id": "op-17"}

{"ok": true, "data": {...}}            {"ok": true, "records": [...]}
{"ok": false, "error_class": "rate_limit", "message": "...", "deferred": false}
```
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aam.descriptor import ConnectorDescriptor
from aam.errors import ERROR_CLASSES

ErrorClass = Literal[
    "auth_expired",
    "invalid_creds",
    "rate_limit",
    "network_error",
    "server_error",
    "timeout",
    "client_error",
    "schema_drift",
]
assert set(ErrorClass.__args__) == set(ERROR_CLASSES)  # type: ignore[attr-defined]

#: Upper bound on records one paginate operation may ask for.
MAX_RECORDS_LIMIT = 1_000_000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Operation(_Model):
    """One logical call: a GET (optionally following pages) or a POST of one logical write."""

    connector_id: str = Field(min_length=3, max_length=200)
    method: Literal["GET", "POST"]
    path: str = Field(pattern=r"^/", max_length=4000, description="relative to base_url")
    params: dict[str, str | int | float | bool] | None = None
    paginate: bool = False
    max_records: int | None = Field(default=None, ge=1, le=MAX_RECORDS_LIMIT)
    require: list[str] | None = None
    body: dict[str, Any] | None = None
    operation_id: str | None = Field(default=None, min_length=1, max_length=200)
    deadline_ms: int | None = Field(default=None, ge=1, le=3_600_000)

    @model_validator(mode="after")
    def _shape(self) -> Operation:
        if self.method == "POST":
            if self.body is None:
                raise ValueError("a POST needs 'body' (a JSON object)")
            if self.paginate:
                raise ValueError("'paginate' applies to GET only")
        elif self.body is not None:
            raise ValueError("a GET takes no 'body'")
        return self


class Outcome(_Model):
    """What one operation came to. ``ok`` with ``data`` (or ``records`` for paginate), or an
    error class; ``deferred`` means the write is parked in the AAM's DLQ for a later replay."""

    ok: bool
    data: Any = None
    records: list[Any] | None = None
    error_class: ErrorClass | None = None
    message: str | None = Field(default=None, max_length=4000)
    deferred: bool = False

    @model_validator(mode="after")
    def _shape(self) -> Outcome:
        if self.ok and self.error_class is not None:
            raise ValueError("an ok outcome has no 'error_class'")
        if not self.ok and self.error_class is None:
            raise ValueError("a failed outcome needs 'error_class'")
        return self

    @classmethod
    def success(cls, data: Any = None, *, records: list[Any] | None = None) -> Outcome:
        return cls(ok=True, data=data, records=records)

    @classmethod
    def failure(cls, error_class: str, message: str, *, deferred: bool = False) -> Outcome:
        return cls(ok=False, error_class=error_class, message=message[:4000], deferred=deferred)  # type: ignore[arg-type]


class ReplayCounts(_Model):
    """``POST /gauntlet/v1/dlq/replay``: parked writes replayed, failed again, still waiting."""

    replayed: int = Field(ge=0)
    failed: int = Field(ge=0)
    pending: int = Field(ge=0)


@runtime_checkable
class AamUnderTest(Protocol):
    """What the Gauntlet needs from an AAM. Every method but :meth:`call` may raise; ``call``
    returns an :class:`Outcome` for any failure the AAM classifies."""

    async def put_connector(self, descriptor: ConnectorDescriptor) -> None:
        """Create or replace the connector ``descriptor.connector_id``."""
        ...

    async def drop_connectors(self) -> None:
        """Forget every connector (between runs)."""
        ...

    async def call(self, operation: Operation) -> Outcome:
        """Run one operation."""
        ...

    async def replay_dlq(self) -> ReplayCounts:
        """Replay the parked writes once."""
        ...

    def diagnostics(self, connector_id: str) -> dict[str, Any] | None:
        """The AAM's own figures for a connector (shown, never judged); ``None`` if it has none."""
        ...

    async def aclose(self) -> None:
        """Release what the AAM holds (for an HTTP AAM: the client, not the server)."""
        ...
