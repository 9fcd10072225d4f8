"""The per-request chain of a data call: auth -> rate limit -> fault -> drift -> handler -> ledger.

Each step is a small object with one method that reads and updates a :class:`Call` and may
answer early with a :class:`Reply`. The chain has no I/O: the ASGI layer (``farm.dataplane``)
reads the request into a ``Call``, runs :class:`Pipeline`, and writes the reply — or drops the
connection or stalls, as the fault step decided.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson

from farm.chaos import NO_FAULT, ChaosLevel, FaultDecision, FaultKind
from farm.durable import persist_write
from farm.idempotency import StoredResponse, Verdict, valid_key
from farm.ledger import LedgerWrite
from farm.pagination import (
    PageRequest,
    PaginationError,
    encode_keyset_cursor,
    parse_page_request,
)
from farm.ratelimit_headers import ADVERTISING_STYLES, decision_headers, retry_after_headers
from farm.records import Record
from farm.routes import RouteMatch
from farm.spec import ListOrder, LivingData, PaginationStyle
from farm.state import Farm, ServiceState, TenantState

JSON = b"application/json"
MAX_NON_PAGINATED = 10_000
#: Enum members read on every data request, as module constants (a class lookup costs ~0.1 µs).
_LINK, _OFF = PaginationStyle.link, ChaosLevel.off


#: A query parameter the farm ignores but keeps in ``next`` links and in its attempt log, so a
#: test harness can tie every attempt of one logical operation together (farm/README.md).
OPERATION_MARKER = "gauntlet_op"


#: The attempt log's ``refusal`` of a request the token bucket refused (one refused by
#: authentication: ``auth:<reason>``, the reason of ``farm.auth.AuthFailure``).
RATE_LIMIT_REFUSAL = "rate_limit"


def error_body(error: str, detail: str | None = None, **extra: Any) -> bytes:
    """The JSON body of every refusal: ``{"error": ..., "detail": ...}``."""
    body: dict[str, Any] = {"error": error}
    if detail is not None:
        body["detail"] = detail
    body.update(extra)
    return orjson.dumps(body)


def carried(call: Call, link: str, filters: tuple[str, str] | None) -> str:
    """A ``next`` link with what the request asked that must hold on every page: the lookup
    filter, and the operation marker (so every page of one scan stays tied to the client's
    operation in the attempt log)."""
    if filters:
        link += "&" + urlencode({filters[0]: filters[1]})
    marker = call.query.get(OPERATION_MARKER)
    if marker is not None:
        link += "&" + urlencode({OPERATION_MARKER: marker})
    return link


def page_reply(style: PaginationStyle, data: list[Any], next_link: str | None) -> Reply:
    """A page: ``{"data", "next"}``, or for ``link`` style a bare array and a ``Link`` header."""
    if style is _LINK:
        headers = [(b"link", f'<{next_link}>; rel="next"'.encode())] if next_link else []
        return Reply(200, orjson.dumps(data), headers)
    return Reply(200, orjson.dumps({"data": data, "next": next_link}))


def gateway_body(status: int) -> bytes:
    """What a gateway in front of the service answers when it lost the backend's answer."""
    error = "bad_gateway" if status == 502 else "gateway_timeout"
    return error_body(error, "the upstream service did not answer the gateway in time")


@dataclass(slots=True)
class Reply:
    """An HTTP answer: status, JSON body, extra headers."""

    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class Commit:
    """A write the handler committed; the ledger step records it."""

    record: Record
    key_scope: tuple[str, str, str] | None
    idempotency_key: str | None
    body_sha256: str
    entry: LedgerWrite | None = None


@dataclass(slots=True)
class Call:
    """One data request as it moves through the chain."""

    service: ServiceState
    match: RouteMatch
    method: str
    path: str
    query: dict[str, str]
    headers: dict[bytes, bytes]
    body: bytes = b""
    now: float = 0.0
    tenant: TenantState | None = None
    credential: str | None = None  # the accepted credential's non-secret id (attempt log)
    auth_failure_reason: str | None = None
    #: Why the farm itself refused the request, when the limit or the credential did it (the
    #: attempt log's ``refusal``): ``rate_limit`` or ``auth:<reason>``; injected faults are not
    #: refusals (they are the attempt's ``fault``).
    refusal: str | None = None
    #: The quota left that the rate-limit headers told the client (the attempt log's
    #: ``remaining``); None when the service sends no such headers.
    remaining: int | None = None
    rate_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    fault: FaultDecision = NO_FAULT
    version: int = 1
    commit: Commit | None = None
    replayed: bool = False
    responded: bool = False  # the response has started (too late for a clean 500)
    scope: Any = None  # the ASGI scope (the socket front's transport is in it)


class Authenticate:
    """Step 1: the calling tenant from the credential, else 401/403."""

    def __init__(self, farm: Farm) -> None:
        self.farm = farm

    def __call__(self, call: Call) -> Reply | None:
        spec = call.service.spec
        tenant_id, failure, credential = self.farm.authenticator.authenticate(spec, call.headers)
        if failure is None:
            assert tenant_id is not None
            call.tenant = call.service.tenants[tenant_id]
            call.credential = credential
            return None
        call.auth_failure_reason = failure.reason
        call.refusal = f"auth:{failure.reason}"
        if failure.tenant is not None:
            call.tenant = call.service.tenants.get(failure.tenant)
        counters = call.tenant.metrics if call.tenant else call.service.metrics.unattributed
        counters.auth_failures[failure.reason] += 1
        if failure.status == 403:
            return Reply(403, error_body("forbidden", "credential belongs to another tenant"))
        headers = [(b"www-authenticate", b'Bearer error="invalid_token"')]
        body = orjson.dumps({"error": "invalid_token", "error_description": failure.reason})
        return Reply(401, body, headers)


class RateLimit:
    """Step 2: the (service, tenant) token bucket; 429 when empty. The headers describing the
    limit follow the service's ``rate_limit_headers`` style (``farm.ratelimit_headers``)."""

    def __call__(self, call: Call) -> Reply | None:
        tenant = call.tenant
        assert tenant is not None
        decision = tenant.bucket.acquire(call.now)
        style = tenant.spec.rate_limit_headers
        call.rate_headers = [
            *tenant.policy_headers,
            *decision_headers(style, decision, int(tenant.bucket.capacity)),
        ]
        if style in ADVERTISING_STYLES:
            call.remaining = decision.remaining
        if decision.allowed:
            return None
        tenant.metrics.rate_limited += 1
        call.refusal = RATE_LIMIT_REFUSAL
        return Reply(
            429,
            error_body("rate_limited", "token bucket empty"),
            retry_after_headers(style, decision.retry_after),
        )


class InjectFault:
    """Step 3: the seeded fault decision. 5xx and 429 spikes answer here; drops and stalls are
    carried out by the ASGI layer (a commit-then-fail only after the ledger step)."""

    def __init__(self, farm: Farm) -> None:
        self.farm = farm

    def __call__(self, call: Call) -> Reply | None:
        tenant = call.tenant
        assert tenant is not None
        if self.farm.chaos.level_for(tenant.service) is _OFF:
            return None
        weather = call.service.weather
        window = weather.at(call.now, tenant.tenant, call.method) if weather.enabled else None
        rates = tenant.rates
        if window is None:
            if rates.quiet:
                return None
        elif window.kind == "brownout":
            rates = tenant.browned_out(window.extra_error, window.latency_factor)
        decision = tenant.dice.roll(rates, call.method == "POST")
        if window is not None and window.kind == "outage":
            # The dice rolled anyway (the same draws whatever happens); the service is down.
            decision = FaultDecision(FaultKind.outage)
        call.fault = decision
        if decision.kind is None or decision.after_commit:
            return None
        kind = decision.kind
        self.farm.ledger.fault(tenant.service, tenant.tenant, kind.value)
        tenant.metrics.faults[kind.value] += 1
        if kind is FaultKind.server_error:
            headers = [(b"retry-after", b"1")] if decision.status == 503 else []
            return Reply(decision.status, error_body("injected_fault", "server error"), headers)
        if kind is FaultKind.rate_limit_spike:
            style = tenant.spec.rate_limit_headers
            return Reply(
                429, error_body("rate_limited", "rate limit spike"), retry_after_headers(style, 1)
            )
        return None  # network (dropped by the ASGI layer) or timeout (held, then served)


class ApplyDrift:
    """Step 4: count the call for the drift schedule and fix the schema version it sees."""

    def __call__(self, call: Call) -> None:
        call.version = call.service.drift.on_call(call.now)


class Handle:
    """Step 5: list, fetch or create records."""

    def __init__(self, farm: Farm) -> None:
        self.farm = farm

    def __call__(self, call: Call) -> Reply:
        route = call.match.route
        if call.match.record_id is not None:
            return self.fetch(call)
        if call.method == "POST":
            return self.create(call)
        endpoint = route.endpoints["GET"]
        if endpoint.paginated:
            return self.page(call)
        return self.everything(call)

    def _table(self, call: Call) -> Any:
        assert call.tenant is not None
        resource = call.match.route.resource.name
        return self.farm.records.table(call.service.spec.id, call.tenant.tenant, resource, call.now)

    def page(self, call: Call) -> Reply:
        resource = call.match.route.resource
        try:
            request = parse_page_request(call.query, resource.pagination)
        except PaginationError as exc:
            return Reply(400, error_body("invalid_request", str(exc)))
        living = call.service.spec.living
        if living is not None:
            return self.living_page(call, request, living)
        table = self._table(call)
        filters = self._filters(call)
        if filters is None:
            total = len(table)
            records = table.slice(request.offset, request.limit)
        else:
            field_name, value = filters
            matches = table.matching(field_name, value)
            total = len(matches)
            records = [
                table.get(i) for i in matches[request.offset : request.offset + request.limit]
            ]
        next_link = None
        if request.offset + request.limit < total:
            next_link = carried(call, f"{call.path}?{request.next_query()}", filters)
        data = call.service.drift.render_many(resource.name, records)
        return page_reply(resource.pagination.style, data, next_link)

    def living_page(self, call: Call, request: PageRequest, living: LivingData) -> Reply:
        """A page of a living collection: newest first if the service lists so, keyset cursors
        (records created meanwhile never shift a cursor scan; they do shift page numbers), and
        cursors that expire after ``cursor_ttl_seconds``."""
        now_ms = int(call.now * 1000)
        if living.cursor_ttl_seconds is not None and request.issued_ms is not None:
            age = (now_ms - request.issued_ms) / 1000.0
            if age > living.cursor_ttl_seconds:
                detail = (
                    f"cursor expired ({age:.0f}s old, cursors live "
                    f"{living.cursor_ttl_seconds:g}s); restart the listing without a cursor"
                )
                return Reply(living.cursor_expired_status, error_body("cursor_expired", detail))
        table = self._table(call)
        filters = self._filters(call)
        indexes: list[int] | range = (
            range(len(table)) if filters is None else table.matching(*filters)
        )
        newest = living.order is ListOrder.newest_first
        ordered = indexes[::-1] if newest else indexes
        keyset = request.style is PaginationStyle.cursor
        if keyset and request.before is not None:
            ordered = [i for i in ordered if i < request.before]
            chosen = ordered[: request.limit]
            more = len(ordered) > request.limit
        else:
            chosen = list(ordered[request.offset : request.offset + request.limit])
            more = request.offset + request.limit < len(ordered)
        next_link = None
        if more and chosen:
            issued = now_ms if living.cursor_ttl_seconds is not None else None
            if keyset:
                if newest:
                    cursor = encode_keyset_cursor("b", chosen[-1], issued)
                else:
                    cursor = encode_keyset_cursor("o", request.offset + request.limit, issued)
                next_link = f"{call.path}?limit={request.limit}&cursor={cursor}"
            else:
                next_link = f"{call.path}?{request.next_query()}"
            next_link = carried(call, next_link, filters)
        records = [table.get(i) for i in chosen]
        resource = call.match.route.resource
        data = call.service.drift.render_many(resource.name, records)
        return page_reply(resource.pagination.style, data, next_link)

    def everything(self, call: Call) -> Reply:
        table = self._table(call)
        records = table.slice(0, MAX_NON_PAGINATED)
        data = call.service.drift.render_many(call.match.route.resource.name, records)
        return Reply(200, orjson.dumps({"data": data, "next": None}))

    def _filters(self, call: Call) -> tuple[str, str] | None:
        lookup = call.match.route.resource.lookup_field
        if lookup is not None and lookup in call.query:
            return lookup, call.query[lookup]
        return None

    def fetch(self, call: Call) -> Reply:
        rid = call.match.record_id
        assert rid is not None
        record = self._table(call).find(rid)
        if record is None:
            return Reply(404, error_body("not_found", f"no record with id {rid!r}"))
        resource = call.match.route.resource.name
        return Reply(200, orjson.dumps(call.service.drift.render(resource, record)))

    def create(self, call: Call) -> Reply:
        try:
            body = orjson.loads(call.body) if call.body else None
        except orjson.JSONDecodeError as exc:
            return Reply(400, error_body("invalid_json", f"request body is not JSON: {exc}"))
        if not isinstance(body, dict):
            kind = "an empty body" if body is None else f"a JSON {type(body).__name__}"
            return Reply(422, error_body("invalid_body", f"expected a JSON object, got {kind}"))
        assert call.tenant is not None
        service = call.service
        resource = call.match.route.resource.name
        canonical = service.drift.to_canonical(resource, body)
        digest = hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()
        key_scope = None
        raw_key = call.headers.get(b"idempotency-key")
        key = raw_key.decode("latin-1") if raw_key is not None else None
        if key is not None and service.spec.idempotency.supported:
            if not valid_key(key):
                return Reply(
                    400,
                    error_body("invalid_request", "Idempotency-Key must be 1-255 printable chars"),
                )
            key_scope = (service.spec.id, call.tenant.tenant, key)
            verdict, stored = self.farm.idempotency.begin(
                key_scope, digest, service.spec.idempotency.key_ttl_seconds
            )
            if verdict is Verdict.MISMATCH:
                return Reply(
                    422, error_body("idempotency_key_reuse", "same key, different request body")
                )
            if verdict is Verdict.IN_FLIGHT:
                return Reply(409, error_body("idempotency_key_in_flight", "first request pending"))
            if verdict is Verdict.REPLAY:
                assert stored is not None
                call.replayed = True
                return Reply(stored.status, stored.body, [(b"idempotent-replayed", b"true")])
        created_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        record = self._table(call).create(canonical, created_at)
        call.commit = Commit(record, key_scope, key, digest)
        return Reply(201, orjson.dumps(service.drift.render(resource, record)))


class RecordInLedger:
    """Step 6: every committed write goes into the ledger; the idempotent response is stored."""

    def __init__(self, farm: Farm) -> None:
        self.farm = farm

    def __call__(self, call: Call, reply: Reply) -> None:
        tenant = call.tenant
        if tenant is None:
            return
        if call.replayed:
            tenant.metrics.idempotent_replays += 1
            tenant.counts["idempotent_replays"] += 1
            return
        commit = call.commit
        if commit is None:
            return
        lookup = call.match.route.resource.lookup_field
        commit.entry = self.farm.ledger.commit(
            tenant.service,
            tenant.tenant,
            call.match.route.resource.name,
            commit.record["id"],
            idempotency_key=commit.idempotency_key,
            lookup_value=commit.record.get(lookup) if lookup else None,
            body_sha256=commit.body_sha256,
        )
        if commit.key_scope is not None:
            self.farm.idempotency.complete(
                commit.key_scope, StoredResponse(reply.status, reply.body)
            )
        tenant.counts["writes_committed"] += 1
        tenant.metrics.writes_committed += 1
        if call.fault.after_commit:
            self.farm.ledger.mark_failed_after_commit(commit.entry)
            gateway = call.fault.kind is FaultKind.commit_then_5xx
            kind = (FaultKind.commit_then_5xx if gateway else FaultKind.commit_then_fail).value
            self.farm.ledger.fault(tenant.service, tenant.tenant, kind)
            tenant.metrics.faults[kind] += 1
        persist_write(
            self.farm, commit, reply, "commit_then_fail" if call.fault.after_commit else "ok"
        )


class Pipeline:
    """The chain, in contract order. ``before_handler`` and ``after_hold`` are split so the ASGI
    layer can hold a timed-out request between them without the chain doing I/O."""

    def __init__(self, farm: Farm) -> None:
        self.authenticate = Authenticate(farm)
        self.rate_limit = RateLimit()
        self.inject_fault = InjectFault(farm)
        self.apply_drift = ApplyDrift()
        self.handle = Handle(farm)
        self.record = RecordInLedger(farm)

    def before_handler(self, call: Call) -> Reply | None:
        """Auth, rate limit and fault: a reply here ends the request early."""
        return self.authenticate(call) or self.rate_limit(call) or self.inject_fault(call)

    def after_hold(self, call: Call) -> Reply:
        """Drift, handler, ledger."""
        self.apply_drift(call)
        reply = self.handle(call)
        self.record(call, reply)
        return reply
