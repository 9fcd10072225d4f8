"""The standard workflows and their registry.

Each workflow is ``async def workflow(connector, **params) -> dict`` (one iteration; the runner
loops it for the scenario's duration) plus a ``supports(spec)`` predicate so the runner only
assigns it to services where it means something.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from farm.spec import DriftAction, ServiceSpec
from workflows.connector import ConnectorHandle, WorkflowConfigError
from workflows.journal import DriftMismatch, IssuedWrite

WorkflowFn = Callable[..., Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class RegisteredWorkflow:
    """A workflow by name: the function, what it needs, and one line for listings."""

    name: str
    fn: WorkflowFn
    supports: Callable[[ServiceSpec], bool]
    description: str


REGISTRY: dict[str, RegisteredWorkflow] = {}


def register(
    name: str, supports: Callable[[ServiceSpec], bool], description: str
) -> Callable[[WorkflowFn], WorkflowFn]:
    """Decorator: make a workflow runnable by name from scenario specs."""

    def wrap(fn: WorkflowFn) -> WorkflowFn:
        REGISTRY[name] = RegisteredWorkflow(name, fn, supports, description)
        return fn

    return wrap


def get_workflow(name: str) -> RegisteredWorkflow:
    """Look a workflow up by name; unknown names list the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise WorkflowConfigError(f"unknown workflow {name!r}: expected one of {known}") from None


# --- high-volume read ---------------------------------------------------------------------------


def _has_paginated(spec: ServiceSpec) -> bool:
    return any(e.paginated for r in spec.resources for e in r.endpoints)


@register(
    "high_volume_read",
    _has_paginated,
    "page through a paginated collection as fast as the AAM allows",
)
async def high_volume_read(
    connector: ConnectorHandle, resource: str | None = None, pages: int = 3
) -> dict[str, Any]:
    """Read up to ``pages`` pages of a collection, following ``next`` links."""
    candidates = connector.paginated_resources()
    chosen = _pick(connector, candidates, resource, "a paginated resource")
    page_size = chosen.pagination.page_size
    limit = max(1, int(pages)) * page_size
    records = 0
    # Only the id is relied on: this workflow measures throughput, not field semantics.
    path = connector.collection_path(chosen)
    async for _ in connector.paginate(path, require=["id"], max_records=limit):
        records += 1
        if records >= limit:
            break
    return {"records": records}


# --- idempotent write ---------------------------------------------------------------------------


def _has_writable(spec: ServiceSpec) -> bool:
    return any(
        r.lookup_field and any(e.method.value == "POST" for e in r.endpoints)
        for r in spec.resources
    )


def _value_for(kind: str, seed: str) -> Any:
    """A deterministic, plausible value of a field kind (the farm stores the body as sent)."""
    n = int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16)
    if kind in ("amount", "number"):
        return round(10 + (n % 100_000) / 100, 2)
    if kind == "integer":
        return 1 + n % 1000
    if kind == "boolean":
        return n % 2 == 0
    if kind == "currency":
        return ("USD", "EUR", "GBP")[n % 3]
    if kind == "email":
        return f"user{n % 100_000}@example.com"
    if kind in ("date",):
        return f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}"
    if kind == "datetime":
        return f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}T12:00:00Z"
    if kind.startswith("ref:"):
        return str(1 + n % 100)
    return f"{kind}-{n % 100_000}"


@register(
    "idempotent_write",
    _has_writable,
    "create records through POST; each logical write carries its own operation id",
)
async def idempotent_write(
    connector: ConnectorHandle, resource: str | None = None
) -> dict[str, Any]:
    """Create one record. The operation id is also the record's lookup value, so the farm's
    ledger can be matched to this write even when the client sends no idempotency key."""
    chosen = _pick(connector, connector.writable_resources(), resource, "a writable resource")
    lookup = chosen.lookup_field
    assert lookup is not None  # writable_resources() guarantees it
    op_id = connector.journal.next_operation_id(connector.run_id)
    body = {
        name: _value_for(kind, f"{op_id}:{name}")
        for name, kind in connector.v1_fields(chosen.name).items()
        if name != "id"
    }
    body[lookup] = op_id
    write = IssuedWrite(
        operation_id=op_id,
        connector=connector.id,
        service=connector.service,
        tenant=connector.tenant,
        resource=chosen.name,
        lookup_field=lookup,
    )
    connector.journal.issue_write(write)
    try:
        await connector.post(connector.collection_path(chosen), body, operation_id=op_id)
    except BaseException as exc:
        write.outcome = "failed"
        write.error_class = getattr(exc, "error_class", type(exc).__name__)
        write.deferred = bool(getattr(exc, "deferred", False))
        raise
    write.outcome = "ok"
    return {"writes": 1}


# --- drift-sensitive read -----------------------------------------------------------------------


def drift_target(spec: ServiceSpec) -> tuple[str, str] | None:
    """The (resource, v1 field) the service's drift schedule first renames, removes or retypes,
    on a resource with a paginated GET; ``None`` when the service has no such drift."""
    paginated = {r.name for r in spec.resources if any(e.paginated for e in r.endpoints)}
    touched: set[tuple[str, str]] = set()
    for step in spec.drift_schedule:
        if step.action is DriftAction.add:
            continue
        key = (step.resource, step.field)
        fields = spec.schema_.fields.get(step.resource, {})
        if step.resource in paginated and step.field in fields and key not in touched:
            return key
        touched.add(key)
        if step.to:
            touched.add((step.resource, step.to))
    return None


def _values_equal(expected: Any, got: Any) -> bool:
    # Type-strict on purpose: "12.5" for 12.5 is wrong data (an unmapped retype), not a match.
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(expected) is type(got) and expected == got
    if isinstance(expected, int | float) and isinstance(got, int | float):
        return math.isclose(float(expected), float(got), rel_tol=1e-9, abs_tol=1e-9)
    return type(expected) is type(got) and expected == got


_MISSING = "<missing>"


@register(
    "drift_sensitive_read",
    lambda spec: drift_target(spec) is not None,
    "read a field the drift schedule changes; values must match the farm's ground truth",
)
async def drift_sensitive_read(
    connector: ConnectorHandle,
    resource: str | None = None,
    field: str | None = None,
    pages: int = 2,
) -> dict[str, Any]:
    """Read records and compare the drifting field with the farm's canonical records.

    A wrong or missing value is a mismatch (wrong data returned). ``errors.SchemaDrift`` from
    the AAM is the acceptable alternative: the runner stops this workflow copy.
    """
    target = drift_target(connector.spec)
    res_name = resource or (target[0] if target else None)
    fld = field or (target[1] if target else None)
    if not res_name or not fld:
        raise WorkflowConfigError(f"{connector.service}: no drifting field to read")
    chosen = _pick(connector, connector.paginated_resources(), res_name, "a paginated resource")
    truth = await connector.truth.records(connector.service, chosen.name, connector.tenant)
    limit = max(1, int(pages)) * chosen.pagination.page_size
    checked = mismatched = seen = 0
    path = connector.collection_path(chosen)
    later: list[tuple[str, Any, Any]] = []  # records whose version the cached truth predates
    async for record in connector.paginate(path, require=["id", fld], max_records=limit):
        seen += 1
        rid = str(record.get("id"))
        canonical = truth.get(rid)
        if canonical is not None and fld in canonical:
            version = record.get("version")
            if version is not None and version != canonical.get("version"):
                later.append((rid, version, record.get(fld, _MISSING)))
            else:
                checked += 1
                # counted as we go: a page that fails later must not hide the values checked
                connector.journal.drift_values_checked += 1
                mismatched += _compare(connector, chosen.name, rid, fld, canonical[fld],
                                       record.get(fld, _MISSING))  # fmt: skip
        if seen >= limit:
            break
    if later:
        # Living data: the record changed since the truth was fetched; compare with the very
        # version the AAM returned, from the farm's version history.
        history = await connector.truth.versions(connector.service, chosen.name, connector.tenant)
        for rid, version, got in later:
            match = next((v for v in history.get(rid, []) if v.get("version") == version), None)
            expected = (match or {}).get("record", {}).get(fld, _MISSING)
            checked += 1
            connector.journal.drift_values_checked += 1
            mismatched += _compare(connector, chosen.name, rid, fld, expected, got)
    return {"checked": checked, "mismatched": mismatched}


def _compare(
    connector: ConnectorHandle, resource: str, rid: str, fld: str, expected: Any, got: Any
) -> int:
    """1 (and a journal entry) when ``got`` is not the ground truth's ``expected``."""
    if _values_equal(expected, got):
        return 0
    connector.journal.mismatch(DriftMismatch(connector.id, resource, rid, fld, expected, got))
    return 1


def _pick(connector: ConnectorHandle, candidates: list[Any], name: str | None, what: str) -> Any:
    if not candidates:
        raise WorkflowConfigError(f"service {connector.service} has no {what}")
    if name is None:
        return candidates[0]
    for candidate in candidates:
        if candidate.name == name:
            return candidate
    names = ", ".join(c.name for c in candidates)
    raise WorkflowConfigError(
        f"service {connector.service}: {name!r} is not {what} (expected one of {names})"
    )
