"""The admin surface (status, chaos, reset, ledger, records, credentials) and the token endpoint.

Admin routes need ``Authorization: Bearer <admin token>``: 401 without one, 403 with a wrong one.
Bodies are serialised once with orjson and returned as bytes (no FastAPI re-encoding).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import time
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, unquote_plus

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from farm import metrics
from farm.attempts import attempt_json
from farm.chaos import ChaosLevel
from farm.lease import (
    MAX_HOLDER_CHARS,
    MAX_TTL_SECONDS,
    MIN_TTL_SECONDS,
    Lease,
    LeaseHeld,
    LeaseUnknown,
)
from farm.records import ResourceRecords, index_of
from farm.spec import AuthType
from farm.state import Farm


class FarmError(HTTPException):
    """An HTTP refusal rendered as ``{"error": ..., "detail": ...}`` (plus extra fields)."""

    def __init__(
        self,
        status: int,
        error: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(status, detail, headers)
        self.error = error
        self.extra = extra or {}


def json_response(
    content: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """orjson bytes as an ``application/json`` response."""
    return Response(orjson.dumps(content), status, headers, media_type="application/json")


def farm_of(request: Request) -> Farm:
    farm: Farm = request.app.state.farm
    return farm


def require_admin(request: Request) -> Farm:
    """Dependency: the caller holds the admin token."""
    farm = farm_of(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise FarmError(401, "unauthorized", "admin token required", {"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(token.strip().encode(), farm.admin_token.encode()):
        raise FarmError(403, "forbidden", "wrong admin token")
    return farm


AdminFarm = Annotated[Farm, Depends(require_admin)]


class ChaosRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: ChaosLevel
    service: str | None = None


class OutageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service: str = Field(min_length=1, max_length=200)
    tenant: str | None = Field(
        default=None, min_length=1, max_length=200, description="one tenant (default: all)"
    )
    at_seconds: float = Field(
        ge=0, le=86_400, allow_inf_nan=False, description="start, in seconds after the last reset"
    )
    duration_seconds: float = Field(gt=0, le=3600, allow_inf_nan=False)
    methods: list[Literal["GET", "POST", "PUT", "PATCH", "DELETE"]] | None = Field(
        default=None,
        min_length=1,
        max_length=5,
        description="only requests of these methods (e.g. [POST]: the write path is down)",
    )


class ResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)


class LeaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    holder: str = Field(min_length=1, max_length=MAX_HOLDER_CHARS)
    ttl_seconds: float = Field(default=30.0, ge=MIN_TTL_SECONDS, le=MAX_TTL_SECONDS)


class RenewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ttl_seconds: float = Field(default=30.0, ge=MIN_TTL_SECONDS, le=MAX_TTL_SECONDS)


LEASE_HEADER = "x-farm-lease"


def leased_error(lease: Lease) -> FarmError:
    """409: someone else holds the farm (who, until when)."""
    return FarmError(
        409,
        "farm_leased",
        f"farm leased by {lease.holder!r} until {lease.expires_at:.0f} (Unix time)",
        extra={"lease": lease.public()},
    )


def require_lease(request: Request, farm: Farm) -> None:
    """Chaos and reset belong to the lease holder while a lease is live."""
    try:
        farm.leases.check(request.headers.get(LEASE_HEADER))
    except LeaseHeld as exc:
        raise leased_error(exc.lease) from None


def _schedule_expiry(farm: Farm, lease: Lease) -> None:
    # The farm goes back to calm by itself when a lease lapses, even if nobody calls it.
    loop = asyncio.get_running_loop()
    loop.call_later(max(0.0, lease.expires_at - time.time()) + 0.05, farm.leases.current)


admin = APIRouter(prefix="/admin")


@admin.get("/status")
def status(farm: AdminFarm) -> Response:
    """Live counters per service and tenant, schema versions and chaos levels."""
    return json_response(farm.status())


@admin.post("/chaos")
def set_chaos(farm: AdminFarm, body: ChaosRequest, request: Request) -> Response:
    """Set the chaos level of every service, or of one (the lease holder's, while leased)."""
    require_lease(request, farm)
    try:
        farm.set_chaos(body.level, body.service)
    except KeyError:
        raise FarmError(404, "unknown_service", f"no service {body.service!r}") from None
    return json_response(farm.chaos.as_json())


@admin.post("/outages")
def schedule_outage(farm: AdminFarm, body: OutageRequest, request: Request) -> Response:
    """Schedule a full outage of a service (or one tenant) at a fixed time after the last reset:
    every request in the window is refused before it is read (ledger kind ``outage``). Reset
    drops scheduled outages (the lease holder's, while leased)."""
    require_lease(request, farm)
    try:
        window = farm.schedule_outage(
            body.service,
            body.tenant,
            body.at_seconds,
            body.duration_seconds,
            tuple(sorted(set(body.methods))) if body.methods else None,
        )
    except KeyError as exc:
        raise FarmError(404, "unknown_service", str(exc.args[0])) from None
    return json_response(window)


@admin.post("/reset")
def reset(farm: AdminFarm, request: Request, body: ResetRequest | None = None) -> Response:
    """Everything but credentials back to the start (optionally with a new seed); a new epoch."""
    require_lease(request, farm)
    farm.reset(body.seed if body else None)
    return json_response({"status": "reset", "seed": farm.seed, "farm": farm.identity()})


@admin.get("/ledger")
def ledger(
    farm: AdminFarm,
    service: str | None = None,
    since_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> Response:
    """Ground truth: committed writes (``seq > since_seq``), injected faults, drift events."""
    if service is not None and service not in farm.services:
        raise FarmError(404, "unknown_service", f"no service {service!r}")
    out = farm.ledger_json(service, since_seq)
    out["farm"] = farm.identity()
    return json_response(out)


@admin.get("/attempts")
def attempts(
    farm: AdminFarm,
    since_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
    service: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Response:
    """The attempt log of the current epoch, oldest first, ``limit`` rows after ``since_seq``."""
    if service is not None and service not in farm.services:
        raise FarmError(404, "unknown_service", f"no service {service!r}")
    identity = farm.identity()
    farm.store.flush()
    rows = farm.store.attempts(farm.epoch, since_seq=since_seq, service=service, limit=limit)
    data = [attempt_json(r) for r in rows]
    next_seq = data[-1]["seq"] if data else since_seq
    return json_response(
        {
            "attempts": data,
            "next_since_seq": next_seq if len(data) == limit else None,
            "oldest_seq": farm.store.oldest_attempt(),
            "farm": identity,
        }
    )


@admin.get("/lease")
def lease_show(farm: AdminFarm) -> Response:
    """Who holds the farm, if anyone."""
    lease = farm.leases.current()
    return json_response({"lease": lease.public() if lease else None, "farm": farm.identity()})


@admin.post("/lease")
async def lease_acquire(farm: AdminFarm, body: LeaseRequest) -> Response:
    """Take the farm: 200 with the lease id, or 409 with who holds it and until when."""
    try:
        lease = farm.leases.acquire(body.holder, body.ttl_seconds)
    except LeaseHeld as exc:
        raise leased_error(exc.lease) from None
    _schedule_expiry(farm, lease)
    return json_response({"lease_id": lease.id, **lease.public(), "farm": farm.identity()})


@admin.put("/lease/{lease_id}")
async def lease_renew(farm: AdminFarm, lease_id: str, body: RenewRequest | None = None) -> Response:
    """Extend a live lease; 404 ``unknown_lease`` if it expired or the farm restarted."""
    try:
        lease = farm.leases.renew(lease_id, body.ttl_seconds if body else 30.0)
    except LeaseUnknown:
        raise FarmError(404, "unknown_lease", "no such live lease (expired, released, or the "
                        "farm restarted)") from None  # fmt: skip
    _schedule_expiry(farm, lease)
    return json_response({"lease_id": lease.id, **lease.public(), "farm": farm.identity()})


@admin.delete("/lease/{lease_id}")
def lease_release(farm: AdminFarm, lease_id: str) -> Response:
    """Give the farm back."""
    try:
        farm.leases.release(lease_id)
    except LeaseUnknown:
        raise FarmError(404, "unknown_lease", "no such live lease") from None
    return json_response({"released": True, "farm": farm.identity()})


def _table(farm: Farm, service: str, resource: str, tenant: str) -> ResourceRecords:
    spec = farm.specs.get(service)
    if spec is None:
        raise FarmError(404, "unknown_service", f"no service {service!r}")
    if resource not in {r.name for r in spec.resources}:
        raise FarmError(404, "unknown_resource", f"{service} has no resource {resource!r}")
    if tenant not in {t.id for t in spec.tenants}:
        raise FarmError(404, "unknown_tenant", f"{service} has no tenant {tenant!r}")
    return farm.records.table(service, tenant, resource, farm.clock.now())


@admin.get("/records/{service}/{resource}")
def records(
    farm: AdminFarm,
    service: str,
    resource: str,
    tenant: str,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> Response:
    """Canonical (version-1 shape) records of one tenant's resource, current versions."""
    table = _table(farm, service, resource, tenant)
    return json_response({"data": table.slice(offset, limit), "total": len(table)})


@admin.get("/records/{service}/{resource}/versions")
def record_versions(farm: AdminFarm, service: str, resource: str, tenant: str) -> Response:
    """Every version of every record that changed during the run (living data)."""
    table = _table(farm, service, resource, tenant)
    living = table.living
    changed: dict[str, list[dict[str, Any]]] = {}
    if living is not None:
        for index in sorted(living.history):
            versions = living.history[index]
            changed[str(versions[-1].record["id"])] = [v.as_json() for v in versions]
    return json_response(
        {
            "service": service,
            "resource": resource,
            "tenant": tenant,
            "living": living is not None,
            "updates": living.updates if living else 0,
            "created_by_others": living.others_created if living else 0,
            "records": changed,
        }
    )


@admin.get("/records/{service}/{resource}/{record_id}/versions")
def one_record_versions(
    farm: AdminFarm, service: str, resource: str, record_id: str, tenant: str
) -> Response:
    """Every version of one record, oldest first (one entry if it never changed)."""
    table = _table(farm, service, resource, tenant)
    index = index_of(resource, record_id)
    if index is None or index >= len(table):
        raise FarmError(404, "not_found", f"no record with id {record_id!r}")
    if table.living is None:
        versions = [{"version": 1, "since": None, "record": table.get(index)}]
    else:
        versions = [v.as_json() for v in table.living.versions(index)]
    return json_response({"id": record_id, "versions": versions})


@admin.get("/credentials")
def credentials(farm: AdminFarm) -> Response:
    """Every tenant's credentials (the same JSON as ``<state dir>/credentials.json``)."""
    return json_response(farm.credentials.as_json())


public = APIRouter()


@public.get("/healthz")
def healthz(request: Request) -> Response:
    """Liveness: no auth."""
    return json_response({"status": "ok", "services": len(farm_of(request).services)})


@public.get("/metrics")
def prometheus_metrics() -> Response:
    """Prometheus text exposition of the ``gauntlet_farm_*`` families."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)


def _token_error(status: int, error: str, description: str) -> Response:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if error == "invalid_client":
        headers["WWW-Authenticate"] = 'Basic realm="gauntlet-farm"'
    return json_response({"error": error, "error_description": description}, status, headers)


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        # ValueError: a non-ASCII header value (b64decode refuses non-ASCII str).
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    # RFC 6749 §2.3.1: both are form-urlencoded before Basic encoding.
    return unquote_plus(client_id), unquote_plus(secret)


@public.post("/oauth2/token")
async def token(request: Request) -> Response:
    """RFC 6749 §4.4 client-credentials grant; its own limit and faults only if configured."""
    farm = farm_of(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return _token_error(
            400, "invalid_request", "body must be application/x-www-form-urlencoded"
        )
    raw = await request.body()
    try:
        form = parse_qs(raw.decode(), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError):
        return _token_error(400, "invalid_request", "malformed form body")
    repeated = sorted(k for k, v in form.items() if len(v) > 1)
    if repeated:
        return _token_error(400, "invalid_request", f"repeated parameter(s): {', '.join(repeated)}")
    params = {k: v[0] for k, v in form.items()}
    grant = params.get("grant_type")
    if not grant:
        return _token_error(400, "invalid_request", "grant_type is required")
    if grant != "client_credentials":
        return _token_error(400, "unsupported_grant_type", f"grant_type {grant!r} is not supported")
    basic = request.headers.get("authorization")
    in_body = "client_id" in params or "client_secret" in params
    if basic and in_body:
        return _token_error(400, "invalid_request", "use one client authentication method, not two")
    if basic:
        pair = _basic_credentials(basic)
        if pair is None:
            return _token_error(401, "invalid_client", "malformed Basic credentials")
        client_id, secret = pair
    else:
        client_id, secret = params.get("client_id", ""), params.get("client_secret", "")
    if not client_id or not secret:
        return _token_error(401, "invalid_client", "client authentication required")
    creds = farm.credentials.by_client_id.get(client_id)
    if (
        creds is None
        or creds.client_secret is None
        or not hmac.compare_digest(secret.encode(), creds.client_secret.encode())
    ):
        return _token_error(401, "invalid_client", "unknown client or wrong secret")
    spec = farm.specs[creds.service]
    assert spec.auth.type is AuthType.oauth2_client_credentials
    tenant = farm.services[creds.service].tenants[creds.tenant]
    refusal = tenant.token_guard.check(farm.clock.now())
    if refusal is not None:
        farm.ledger.fault(creds.service, creds.tenant, refusal.kind)
        tenant.metrics.faults[refusal.kind] += 1
        response = _token_error(refusal.status, refusal.error, refusal.description)
        response.headers["Retry-After"] = str(refusal.retry_after)
        return response
    ttl = spec.auth.token_ttl_seconds
    access_token = farm.tokens.issue(creds, ttl, spec.auth.rotate_token_every_calls)
    tenant.counts["tokens_issued"] += 1
    tenant.metrics.tokens_issued += 1
    body: dict[str, Any] = {"access_token": access_token, "token_type": "Bearer", "expires_in": ttl}
    if "scope" in params:
        body["scope"] = params["scope"]
    return json_response(body, 200, {"Cache-Control": "no-store", "Pragma": "no-cache"})
