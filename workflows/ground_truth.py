"""Turn the farm's admin answers into the judge's evidence (workflows/evidence.py).

Everything here reads the farm (its ledger, attempt log, status and record history) and the
service specs (the farm's own configuration: the judge may know what the AAM may not). Nothing
reads the AAM.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs

from farm.spec import AuthType, ServiceSpec
from workflows.evidence import (
    OP_PARAM,
    CommittedWrite,
    DriftFact,
    FarmAttempt,
    Operation,
    RecordTruth,
    RecordVersion,
    TokenFacts,
)
from workflows.farm_client import FarmClient

#: Records fetched per /admin/records page, and pages at most (a million records).
TRUTH_PAGE = 1000
TRUTH_MAX_PAGES = 1000


def committed_writes(ledger: dict[str, Any], services: Iterable[str]) -> list[CommittedWrite]:
    """The ledger's ``writes`` for ``services``."""
    wanted = set(services)
    out = []
    for w in ledger.get("writes", []):
        if w.get("service") not in wanted:
            continue
        lookup = w.get("lookup_value")
        out.append(
            CommittedWrite(
                service=str(w["service"]),
                tenant=str(w["tenant"]),
                resource=str(w.get("resource")),
                record_id=str(w.get("record_id")),
                lookup_value=None if lookup is None else str(lookup),
                idempotency_key=w.get("idempotency_key"),
                body_sha256=str(w.get("body_sha256")),
                committed_at=float(w.get("committed_at") or 0.0),
            )
        )
    return out


def drift_facts(
    ledger: dict[str, Any], services: Iterable[str], farm_started: float
) -> list[DriftFact]:
    """Drift steps that fired, with the Unix time they fired (``at`` when the farm gives it,
    else the farm's reset time plus ``at_seconds``). An ``add`` changes no v1 field."""
    wanted = set(services)
    out = []
    for e in ledger.get("drift_events", []):
        if e.get("service") not in wanted or e.get("action") == "add":
            continue
        at = e.get("at")
        when = float(at) if at is not None else farm_started + float(e.get("at_seconds") or 0)
        out.append(
            DriftFact(str(e["service"]), str(e["resource"]), str(e["field"]), e["action"], when)
        )
    return out


def _retry_after_seconds(raw: Any, at: float) -> float | None:
    """A ``Retry-After`` as the farm sent it (seconds, a float, or an HTTP date) in seconds."""
    if raw is None or raw == "":
        return None
    try:
        return max(0.0, float(raw))
    except (TypeError, ValueError):
        pass
    try:
        when = parsedate_to_datetime(str(raw))
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - at)


def _marker(row: dict[str, Any]) -> str | None:
    """The operation a row belongs to: ``gauntlet_op`` in its query, else a write's lookup value."""
    query = row.get("query") or ""
    if OP_PARAM in query:
        values = parse_qs(query).get(OP_PARAM)
        if values:
            return values[0]
    if str(row.get("method", "")).upper() == "POST" and row.get("lookup_value") is not None:
        return str(row["lookup_value"])
    return None


def farm_attempts(
    rows: Iterable[dict[str, Any]], limit_status: dict[str, int] | None = None
) -> list[FarmAttempt]:
    """Rows of the farm's attempt log (``GET /admin/attempts``) as :class:`FarmAttempt`.

    The farm says why it refused a request (``refusal``: ``rate_limit`` for its token bucket, a
    refusal the client could have avoided; ``auth:<reason>`` for authentication). A row without
    the field (a farm from before it) is read by its status: the service's rate-limit status
    (429, or 403 in the GitHub/Salesforce dialects, from ``limit_status``) answered without an
    injected fault came from the token bucket. Injected spikes carry their fault kind."""
    limit_status = limit_status or {}
    out = []
    for r in rows:
        at = float(r.get("ts", r.get("at", 0.0)))
        status = r.get("status")
        status = None if status is None else int(status)
        fault = r.get("fault")
        transport = r.get("transport_fault", r.get("transport"))
        if "refusal" in r:
            refusal = r["refusal"] or ""
            rate_limited = refusal == "rate_limit"
            auth_refused: bool | None = refusal.startswith("auth:")
        else:
            rate_limited = (
                status == limit_status.get(str(r["service"]), 429) and not fault and not transport
            )
            auth_refused = None
        out.append(
            FarmAttempt(
                at=at,
                service=str(r["service"]),
                tenant=r.get("tenant"),
                method=str(r.get("method", "GET")).upper(),
                path=str(r.get("path", "")),
                op=_marker(r),
                status=None if transport else status,
                transport=transport,
                fault=fault,
                committed=bool(r.get("committed")),
                retry_after=_retry_after_seconds(r.get("retry_after"), at),
                credential=r.get("credential"),
                rate_limited=rate_limited,
                duration=None if r.get("duration") is None else float(r["duration"]),
                auth_refused=auth_refused,
                remaining=None if r.get("remaining") is None else int(r["remaining"]),
            )
        )
    return out


def token_facts(
    specs: dict[str, ServiceSpec],
    status: dict[str, Any],
    tenants: Iterable[tuple[str, str]],
    duration: float,
) -> dict[tuple[str, str], TokenFacts]:
    """Per OAuth (service, tenant): tokens the farm issued, and how many times a token the tenant
    held stopped working (TTLs that ran out during the run, plus rotations by call count, from
    the calls that passed authentication)."""
    out: dict[tuple[str, str], TokenFacts] = {}
    for service, tenant in tenants:
        spec = specs[service]
        if spec.auth.type is not AuthType.oauth2_client_credentials:
            continue
        counts = status.get("services", {}).get(service, {}).get("tenants", {}).get(tenant, {})
        calls = int(counts.get("calls", 0))
        refused = int(counts.get("401", 0)) + int(counts.get("403", 0))
        ttl = spec.auth.token_ttl_seconds
        expiries = math.floor(duration / ttl) if ttl else 0
        every = spec.auth.rotate_token_every_calls
        rotations = (max(0, calls - refused) // every) if every else 0
        out[(service, tenant)] = TokenFacts(
            issued=int(counts.get("tokens_issued", 0)),
            invalidations=expiries + rotations,
            answered_401=int(counts.get("401", 0)),
        )
    return out


def _created_at(row: dict[str, Any]) -> float | None:
    """When a record appeared, from the ``created_at`` the farm stamps on records that POSTs and
    other users create (seeded records have none)."""
    raw = row.get("created_at")
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


async def record_truth(
    farm: FarmClient,
    service: str,
    tenant: str,
    resource: str,
    writes: list[CommittedWrite],
) -> RecordTruth:
    """Every record of one tenant's resource with all its versions.

    ``/admin/records`` gives the current canonical records; ``.../versions`` every version of
    the records the farm updated during the run (living data), each with the farm time it became
    current. Records created during the run (by our writes or by "other users") carry the time
    they appeared."""
    truth = RecordTruth(service, tenant, resource)
    created = {
        w.record_id: w.committed_at
        for w in writes
        if w.service == service and w.tenant == tenant and w.resource == resource
    }
    offset = 0
    for _ in range(TRUTH_MAX_PAGES):
        page = await farm.records(service, resource, tenant, offset=offset, limit=TRUTH_PAGE)
        for row in page:
            rid = str(row.get("id"))
            appeared = created.get(rid, _created_at(row))
            if appeared is not None:
                truth.created_at[rid] = appeared
            truth.versions[rid] = [
                RecordVersion(int(row.get("version", 1)), appeared or -math.inf, dict(row))
            ]
        if len(page) < TRUTH_PAGE:
            break
        offset += TRUTH_PAGE
    for rid, history in (await farm.record_versions(service, resource, tenant)).items():
        versions = []
        for i, v in enumerate(history):
            since = v.get("since")
            start = float(since) if since else truth.created_at.get(str(rid), -math.inf)
            versions.append(RecordVersion(int(v.get("version", i + 1)), start, dict(v["record"])))
        truth.versions[str(rid)] = versions
    return truth


def resources_read(operations: Iterable[Operation]) -> set[tuple[str, str, str]]:
    """(service, tenant, resource) of every read that returned records."""
    return {
        (op.service, op.tenant, op.resource)
        for op in operations
        if op.kind != "write" and op.resource and op.records
    }
