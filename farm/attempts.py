"""The attempt log: one row for every data request the farm answered (or cut, or held).

A row says what the farm saw and did, never what a client claims: time, service, tenant, a
non-secret credential id, method, path, query, the status sent (or the transport fault: the
connection ``network``-dropped mid-response, or a ``timeout`` stall the client gave up on), the
fault injected (kind), whether a write committed (and its ledger sequence number), the
``Retry-After`` given, and the operation marker the request carried (``Idempotency-Key``) and its
lookup value. Rows are queued to :class:`farm.store.FarmStore` (no I/O on the request path) and
served by ``GET /admin/attempts``.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import orjson

from farm.auth import TokenStore
from farm.credentials import CredentialBook
from farm.routes import RouteMatch
from farm.spec import AuthType, ServiceSpec

#: Types of modules that import this one (``farm.pipeline``, ``farm.state``, ...): named, not
#: imported, so the package has no import cycle (tests/test_layering.py counts type-only ones).
Call = Any
FarmStore = Any

#: The row is queued as the request had it (query, Retry-After and key as bytes, the duration
#: unrounded); the store's writer process finishes it (``farm.store_writer.attempt_row``: decoded,
#: the query cut at ``MAX_QUERY_CHARS``, the key at ``MAX_MARKER_CHARS``, duration to the µs).


def fingerprint(secret: str) -> str:
    """A short, non-reversible id of a credential value the farm does not know."""
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()[:12]


class CredentialIds:
    """The non-secret id of the credential a request carried."""

    def __init__(self, book: CredentialBook, tokens: TokenStore) -> None:
        self._book = book
        self._tokens = tokens

    def of(self, spec: ServiceSpec, headers: dict[bytes, bytes]) -> str | None:
        kind = spec.auth.type
        if kind is AuthType.oauth2_client_credentials:
            raw = headers.get(b"authorization")
            if not raw:
                return None
            scheme, _, token = raw.decode("latin-1").partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                return "malformed"
            issued = self._tokens.get(token)
            return (
                issued.credential if issued is not None else f"unknown-token:{fingerprint(token)}"
            )
        if kind is AuthType.api_key:
            raw = headers.get(spec.auth.api_key_header.lower().encode())
            if raw is None:
                return None
            key = raw.decode("latin-1")
            creds = self._book.by_api_key.get(key)
            if creds is None:
                return f"unknown-key:{fingerprint(key)}"
            return f"api_key:{creds.service}:{creds.tenant}"
        return None


class AttemptLog:
    """Builds attempt rows and queues them; the sequence number is never reused."""

    def __init__(self, store: FarmStore, credential_ids: CredentialIds, first_seq: int) -> None:
        self.store = store
        self.credential_ids = credential_ids
        self.seq = first_seq
        self.epoch = 0

    def record(
        self,
        match: RouteMatch,
        method: str,
        path: str,
        raw_query: bytes,
        headers: dict[bytes, bytes],
        call: Call | None,
        status: int | None,
        retry_after: bytes | None,
        transport_fault: str | None,
        received_at: float | None = None,
    ) -> None:
        """Queue the row of one answered data request; ``ts`` is when the request arrived (a
        judge orders attempts by arrival: a slow answer must not look like a later request)."""
        self.seq += 1
        now = time.time()
        tenant = credential = fault = ledger_seq = lookup_value = None
        committed = 0
        if call is not None:
            if call.tenant is not None:
                tenant = call.tenant.tenant
            decision = call.fault
            kind = decision.kind
            if kind is not None:
                # A fault that struck after the commit is recorded as such (as in the ledger).
                after = decision.after_commit and kind.value != "commit_then_5xx"
                fault = "commit_then_fail" if after else kind.value
            commit = call.commit
            if commit is not None and commit.entry is not None:
                committed = 1
                ledger_seq = commit.entry.seq
                lookup_value = commit.entry.lookup_value
            else:
                field = match.route.resource.lookup_field
                if field is not None:
                    lookup_value = _lookup_value(field, method, call)
            # The auth step names the credential it accepted; any other is looked up here.
            credential = call.credential or self.credential_ids.of(call.service.spec, headers)
        self.store.put(
            "attempts",
            (
                self.seq,
                self.epoch,
                now if received_at is None else received_at,
                match.route.service,
                tenant,
                credential,
                method,
                path,
                raw_query,
                status,
                transport_fault,
                fault,
                committed,
                ledger_seq,
                retry_after,
                headers.get(b"idempotency-key"),
                None if lookup_value is None else orjson.dumps(lookup_value).decode(),
                None if received_at is None else now - received_at,
                None if call is None else call.refusal,
                None if call is None else call.remaining,
            ),
        )


def _lookup_value(field: str, method: str, call: Call) -> Any:
    if method == "GET":
        return call.query.get(field)
    if method == "POST" and call.body:
        try:
            body = orjson.loads(call.body)
        except orjson.JSONDecodeError:
            return None
        if isinstance(body, dict):
            value = body.get(field)
            if isinstance(value, str | int | float | bool):
                return value
    return None


def attempt_json(row: Any) -> dict[str, Any]:
    """One row of ``GET /admin/attempts``."""
    lookup = row["lookup_value"]
    return {
        "seq": row["seq"],
        "ts": row["ts"],
        "service": row["service"],
        "tenant": row["tenant"],
        "credential": row["credential"],
        "method": row["method"],
        "path": row["path"],
        "query": row["query"],
        "status": row["status"],
        "transport_fault": row["transport_fault"],
        "fault": row["fault"],
        "committed": bool(row["committed"]),
        "ledger_seq": row["ledger_seq"],
        "retry_after": row["retry_after"],
        "idempotency_key": row["idempotency_key"],
        "lookup_value": None if lookup is None else orjson.loads(lookup),
        "duration": row["duration"],
        "refusal": row["refusal"],
        "remaining": row["remaining"],
    }
