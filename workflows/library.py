"""The standard workflows and their registry.

Each workflow is ``async def workflow(connector, **params) -> dict`` (one iteration; the runner
loops it for the scenario's duration) plus a ``supports(spec)`` predicate so the runner only
assigns it to services where it means something.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from farm.spec import DriftAction, ServiceSpec
from workflows.connector import ConnectorHandle, WorkflowConfigError
from workflows.journal import IssuedWrite

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
    """Read the first ``pages`` pages of a collection (one paginated operation). Every record
    received is judged against the farm's ground truth."""
    candidates = connector.paginated_resources()
    chosen = _pick(connector, candidates, resource, "a paginated resource")
    limit = max(1, int(pages)) * chosen.pagination.page_size
    records = await connector.scan(
        connector.collection_path(chosen), resource=chosen.name, require=["id"], max_records=limit
    )
    return {"records": len(records)}


@register(
    "full_scan_read",
    _has_paginated,
    "read a whole paginated collection; it must yield exactly the farm's records",
)
async def full_scan_read(connector: ConnectorHandle, resource: str | None = None) -> dict[str, Any]:
    """Read every record of a collection in one paginated operation (judged for completeness:
    no record missing, none twice)."""
    chosen = _pick(connector, connector.paginated_resources(), resource, "a paginated resource")
    records = await connector.scan(
        connector.collection_path(chosen), resource=chosen.name, require=["id"]
    )
    return {"records": len(records)}


def _has_item_get(spec: ServiceSpec) -> bool:
    return any(e.is_item and e.method.value == "GET" for r in spec.resources for e in r.endpoints)


@register(
    "record_lookup",
    _has_item_get,
    "fetch single records by id, again and again; each must be the farm's current version",
)
async def record_lookup(
    connector: ConnectorHandle, resource: str | None = None, spread: int = 20
) -> dict[str, Any]:
    """GET one record by id (chosen round-robin among the first ``spread`` records, so the same
    records come back often and a client that caches them forever is caught serving stale
    versions once the farm updates them)."""
    candidates = [
        r
        for r in connector.spec.resources
        if any(e.is_item and e.method.value == "GET" for e in r.endpoints)
    ]
    chosen = _pick(connector, candidates, resource, "a resource with an item GET")
    item = next(e for e in chosen.endpoints if e.is_item and e.method.value == "GET")
    turn = connector.state.get("lookup_turn", 0)
    connector.state["lookup_turn"] = turn + 1
    ids = connector.state.get(("lookup_ids", chosen.name))
    if ids is None:
        page = await connector.scan(
            connector.collection_path(chosen), resource=chosen.name, require=["id"],
            max_records=max(1, int(spread)),
        )  # fmt: skip
        ids = [str(r["id"]) for r in page if "id" in r]
        connector.state[("lookup_ids", chosen.name)] = ids
    if not ids:
        return {"records": 0}
    rid = ids[turn % len(ids)]
    path = item.path.replace("{id}", rid)
    await connector.get(path, resource=chosen.name, require=["id"])
    return {"records": 1}


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
        await connector.post(
            connector.collection_path(chosen),
            body,
            operation_id=op_id,
            resource=chosen.name,
            lookup_value=op_id,
        )
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
    """Read records relying on the drifting field (``require``): the judge compares every value
    with the farm's ground truth. ``errors.SchemaDrift`` from the AAM is the acceptable
    alternative to a mapped value: the runner stops this workflow copy."""
    target = drift_target(connector.spec)
    res_name = resource or (target[0] if target else None)
    fld = field or (target[1] if target else None)
    if not res_name or not fld:
        raise WorkflowConfigError(f"{connector.service}: no drifting field to read")
    chosen = _pick(connector, connector.paginated_resources(), res_name, "a paginated resource")
    limit = max(1, int(pages)) * chosen.pagination.page_size
    records = await connector.scan(
        connector.collection_path(chosen), resource=chosen.name, require=["id", fld],
        max_records=limit,
    )  # fmt: skip
    return {"records": len(records)}


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
