"""The service spec: one pydantic model, the single source of truth.

A YAML file in ``farm/configs/`` and the ``spec`` of a ``SyntheticService`` custom resource are
both a :class:`ServiceSpec`. The CRD schema is generated from these models, the farm serves them,
and the AAM builds connectors from them. Unknown keys are errors everywhere (``extra="forbid"``).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: A service id: a DNS label that may also contain underscores (the seed's ``my_service_mock``);
#: Kubernetes objects use :func:`dns_name` of it.
SERVICE_ID = r"^[a-z0-9]([-_a-z0-9]*[a-z0-9])?$"
FIELD_NAME = r"^[a-z_][a-z0-9_]*$"

#: Field kinds the record generator knows. ``ref:<resource>`` is a foreign key to another
#: resource of the same service.
FIELD_KINDS = (
    "id",
    "string",
    "text",
    "name",
    "first_name",
    "last_name",
    "email",
    "company",
    "phone",
    "city",
    "country",
    "url",
    "integer",
    "number",
    "amount",
    "currency",
    "boolean",
    "date",
    "datetime",
    "status",
)
FIELD_KIND_PATTERN = r"^(" + "|".join(FIELD_KINDS) + r"|ref:[a-z][a-z0-9_]*)$"
#: Types a ``retype`` drift may turn a field into.
RETYPE_TARGETS = ("string", "integer", "number", "boolean")


def dns_name(service_id: str) -> str:
    """The DNS-safe name of a service id, for Kubernetes objects: ``my_service_mock`` ->
    ``my-service-mock``."""
    return service_id.replace("_", "-")


def _preset_shorthand(value: object) -> object:
    """``error_profile: mostly_ok`` is shorthand for ``error_profile: {preset: mostly_ok}``."""
    return {"preset": value} if isinstance(value, str) else value


def _error_profile_schema(schema: dict[str, Any]) -> None:
    """JSON schema of an ``error_profile`` field: the object, or a preset name (shorthand)."""
    options = list(schema["anyOf"]) if "anyOf" in schema else [dict(schema)]
    schema.clear()
    preset = {"type": "string", "enum": [p.value for p in ErrorPreset]}
    schema["anyOf"] = [*options, preset]
    schema["description"] = "an error profile, or just a preset name (shorthand for {preset: ...})"


def _schema_fields_schema(schema: dict[str, Any]) -> None:
    """JSON schema of ``schema.fields``: the per-resource map, or a flat list of {name, type}."""
    as_map = dict(schema)
    description = as_map.pop("description", "")
    item = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "pattern": FIELD_NAME},
            "type": {"type": "string", "pattern": FIELD_KIND_PATTERN},
        },
        "required": ["name", "type"],
        "additionalProperties": False,
    }
    schema.clear()
    schema["anyOf"] = [as_map, {"type": "array", "items": item, "minItems": 1}]
    schema["description"] = (
        f"{description}; or a flat list of {{name, type}} that describes every resource"
    )


class StrictModel(BaseModel):
    """Base for every spec model: unknown keys are rejected, values are not coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AuthType(StrEnum):
    oauth2_client_credentials = "oauth2_client_credentials"
    api_key = "api_key"
    none = "none"


class HttpMethod(StrEnum):
    GET = "GET"
    POST = "POST"


class PaginationStyle(StrEnum):
    cursor = "cursor"  # ?limit=N&cursor=C, body {"data", "next"}
    page = "page"  # ?page=P&per_page=N, body {"data", "next"}
    offset = "offset"  # ?offset=O&limit=N, body {"data", "next"}
    link = "link"  # ?page=P&per_page=N, body a bare JSON array, next page in a Link header


class ErrorStyle(StrEnum):
    """How a service words its refusals (farm/dialect.py)."""

    default = "default"  # {"error": <code>, "detail": ...}
    github = "github"  # {"message", "documentation_url"}
    salesforce = "salesforce"  # [{"message", "errorCode"}]
    stripe = "stripe"  # {"error": {"type", "code", "message"}}
    shopify = "shopify"  # {"errors": ...}
    hubspot = "hubspot"  # {"status": "error", "message", "correlationId", "category", ...}


class RetryAfterFormat(StrEnum):
    seconds = "seconds"  # Retry-After: 2
    float = "float"  # Retry-After: 2.0 (Shopify)
    http_date = "http_date"  # Retry-After: Tue, 01 Dec 2026 19:40:02 GMT
    omit = "omit"  # no Retry-After on a rate limit (Stripe)


class ErrorPreset(StrEnum):
    none = "none"
    mostly_ok = "mostly_ok"
    flaky_5xx = "flaky_5xx"
    spiky_rate_limit = "spiky_rate_limit"
    degraded = "degraded"


class RateLimitHeaders(StrEnum):
    """How a service tells clients about its rate limit (real providers differ)."""

    ietf = "ietf"  # IETF draft: RateLimit-Policy: "default";q=Q;w=W and RateLimit: r=..;t=..
    github = "github"  # X-RateLimit-Limit / -Remaining / -Used / -Reset (epoch seconds)
    retry_after = "retry_after"  # nothing on success; Retry-After on a 429
    none = "none"  # nothing at all, not even Retry-After on a 429


class DriftAction(StrEnum):
    rename = "rename"
    remove = "remove"
    add = "add"
    retype = "retype"


Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class Endpoint(StrictModel):
    """One HTTP route of a resource, relative to the service's ``base_path``."""

    method: HttpMethod
    path: str = Field(pattern=r"^/[a-z0-9_/{}-]*$", description="e.g. /invoices or /invoices/{id}")
    paginated: bool = False

    @model_validator(mode="after")
    def _shape(self) -> Endpoint:
        if self.paginated and (self.method is not HttpMethod.GET or "{id}" in self.path):
            raise ValueError("only a GET on a collection path (no {id}) can be paginated")
        if self.method is HttpMethod.POST and "{id}" in self.path:
            raise ValueError("POST creates records: its path is the collection, without {id}")
        return self

    @property
    def is_item(self) -> bool:
        return "{id}" in self.path


class Pagination(StrictModel):
    style: PaginationStyle = PaginationStyle.cursor
    page_size: int = Field(default=50, ge=1, le=1000)
    max_page_size: int = Field(default=200, ge=1, le=5000)


class Resource(StrictModel):
    """A REST collection: its routes, how many records each tenant starts with, pagination."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    endpoints: list[Endpoint] = Field(min_length=1)
    records: int = Field(default=200, ge=0, le=1_000_000, description="seeded records per tenant")
    pagination: Pagination = Field(default_factory=Pagination)
    lookup_field: str | None = Field(
        default=None,
        pattern=FIELD_NAME,
        description="field a client may filter the collection by (?field=value), e.g. external_id",
    )


class TokenEndpointLimits(StrictModel):
    """The token endpoint's own trouble (OAuth2 services): a per-client rate limit and a 5xx
    share. Off unless set; the ``hell`` chaos level turns a default on."""

    max_rps: float = Field(default=2.0, gt=0, le=10_000, description="token requests per second")
    burst: int = Field(default=5, ge=1, le=10_000)
    error_rate: Probability = Field(default=0.0, description="share answered 503")


class Auth(StrictModel):
    type: AuthType = AuthType.oauth2_client_credentials
    token_ttl_seconds: int = Field(default=3600, ge=1, le=86400)
    rotate_token_every_calls: int | None = Field(
        default=None, ge=1, description="invalidate a token after this many calls made with it"
    )
    api_key_header: str = Field(default="X-API-Key", pattern=r"^[A-Za-z0-9-]+$")
    token_endpoint: TokenEndpointLimits | None = Field(
        default=None, description="the token endpoint's own rate limit and faults (off: none)"
    )


class RateLimit(StrictModel):
    max_rps: float = Field(gt=0, le=100_000, description="token-bucket refill rate per tenant")
    burst: int = Field(ge=1, le=100_000, description="token-bucket capacity per tenant")


class ErrorProfile(StrictModel):
    """What goes wrong at the HTTP level in calm weather; chaos levels add to it.

    ``preset`` names a shape; any explicit probability overrides the preset's value.
    """

    preset: ErrorPreset = ErrorPreset.mostly_ok
    server_error_rate: Probability | None = Field(default=None, description="5xx share")
    rate_limit_spike_rate: Probability | None = Field(
        default=None, description="extra 429s beyond the token bucket"
    )
    commit_then_fail_share: Probability = Field(
        default=0.5, description="share of write faults that strike after the write committed"
    )
    after_commit_gateway_share: Probability = Field(
        default=0.5,
        description="of the write 5xx faults that strike after the commit, the share answered "
        "502/504 by a gateway that lost the answer (the rest drop the connection)",
    )


class Latency(StrictModel):
    """Added to every answer: ``base_ms`` + ``jitter_ms``·U(0,1), plus a lognormal draw with
    median ``p50_ms`` and 99th percentile ``p99_ms`` when those are set (the heavy tail real
    providers have), capped at ``max_ms``."""

    base_ms: float = Field(default=0.0, ge=0, le=60_000)
    jitter_ms: float = Field(default=0.0, ge=0, le=60_000)
    p50_ms: float | None = Field(default=None, gt=0, le=60_000, description="lognormal median")
    p99_ms: float | None = Field(default=None, gt=0, le=120_000, description="lognormal p99")
    max_ms: float = Field(default=30_000, gt=0, le=300_000, description="cap on one draw")

    @model_validator(mode="after")
    def _tail(self) -> Latency:
        if (self.p50_ms is None) != (self.p99_ms is None):
            raise ValueError("set both p50_ms and p99_ms (a lognormal needs both), or neither")
        if self.p50_ms is not None and self.p99_ms is not None and self.p99_ms < self.p50_ms:
            raise ValueError(f"p99_ms ({self.p99_ms}) must be >= p50_ms ({self.p50_ms})")
        return self


class NetworkProfile(StrictModel):
    """Transport-level trouble: dropped connections and stalls the client really observes."""

    dns_flakiness: Probability = Field(
        default=0.0, description="connection reset before the request is read (never sent)"
    )
    tls_flakiness: Probability = Field(
        default=0.0, description="connection reset before the request is read (never sent)"
    )
    connection_drop_probability: Probability = Field(
        default=0.0, description="connection cut mid-body (FIN or RST after a partial answer)"
    )
    timeout_probability: Probability = 0.0
    timeout_delay_seconds: float = Field(
        default=2.0, gt=0, le=300, description="how long a 'timeout' stalls the response"
    )
    slow_body_probability: Probability = Field(
        default=0.0, description="headers at once, then the body trickles for slow_body_seconds"
    )
    slow_body_seconds: float = Field(
        default=3.0, gt=0, le=300, description="how long a slow body takes to arrive in full"
    )
    latency: Latency = Field(default_factory=Latency)


class BrownoutProfile(StrictModel):
    """Brownout windows: for a few seconds a service (or one tenant) answers with more errors
    and more slowly, together. Windows start about every ``every_seconds`` (x0.5-1.5) and last
    about ``duration_seconds`` (x0.5-1.5), from the seed."""

    every_seconds: float = Field(gt=0, le=86_400, description="mean gap between windows")
    duration_seconds: float = Field(gt=0, le=3600, description="mean window length")
    extra_error_rate: Probability = Field(default=0.3, description="5xx share added in a window")
    latency_factor: float = Field(default=4.0, ge=1, le=100, description="latency multiplier")
    tenant_share: Probability = Field(
        default=0.5, description="share of windows that hit one tenant instead of all"
    )


class OutageProfile(StrictModel):
    """Short full outages: every request is refused (connection reset before it is read)."""

    every_seconds: float = Field(gt=0, le=86_400, description="mean gap between outages")
    duration_seconds: float = Field(gt=0, le=3600, description="mean outage length")
    tenant_share: Probability = Field(
        default=0.0, description="share of outages that hit one tenant instead of all"
    )


class ListOrder(StrEnum):
    oldest_first = "oldest_first"
    newest_first = "newest_first"


class LivingData(StrictModel):
    """Data that changes while a client reads it (off unless set): records updated by their
    owners, records created by other users, listing order, cursors that expire."""

    update_share: Probability = Field(
        default=0.0, description="share of seeded records that may be updated during a run"
    )
    updates_per_minute: float = Field(
        default=0.0, ge=0, le=60_000, description="record updates per tenant and resource"
    )
    creates_per_minute: float = Field(
        default=0.0, ge=0, le=60_000, description="records other users create, per tenant/resource"
    )
    order: ListOrder = Field(
        default=ListOrder.oldest_first,
        description="listing order; newest_first shifts offset/page scans when records appear",
    )
    cursor_ttl_seconds: float | None = Field(
        default=None, gt=0, le=86_400, description="a cursor older than this is expired"
    )
    cursor_expired_status: Literal[400, 410] = Field(
        default=410, description="status of an expired cursor ({error: cursor_expired})"
    )

    @model_validator(mode="after")
    def _updates_need_records(self) -> LivingData:
        if self.updates_per_minute and not self.update_share:
            raise ValueError("updates_per_minute needs an update_share above 0")
        return self


class Dialect(StrictModel):
    """How the service speaks when something is wrong, on top of its rate-limit header style."""

    errors: ErrorStyle = Field(default=ErrorStyle.default, description="error body shape")
    rate_limit_status: Literal[429, 403] = Field(
        default=429, description="status of a rate-limit refusal (GitHub secondary limits: 403)"
    )
    retry_after: RetryAfterFormat = Field(
        default=RetryAfterFormat.seconds, description="how Retry-After is written"
    )


class Schema(StrictModel):
    """Version 1 of every resource's record shape; drift derives later versions from it."""

    version: int = Field(default=1, ge=1)
    fields: dict[str, dict[str, Annotated[str, Field(pattern=FIELD_KIND_PATTERN)]]] = Field(
        description="resource name -> field name -> field kind (FIELD_KINDS or ref:<resource>)",
        json_schema_extra=_schema_fields_schema,
    )

    @field_validator("fields", mode="before")
    @classmethod
    def _no_bare_list(cls, value: object) -> object:
        if isinstance(value, list):
            # ServiceSpec turns a flat list into the map (it knows the resources); a Schema
            # validated on its own has no resources to describe.
            raise ValueError("a flat list of fields needs the service's resources")
        return value

    @field_validator("fields")
    @classmethod
    def _field_names(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for resource, fields in value.items():
            for name in fields:
                if not re.match(FIELD_NAME, name):
                    raise ValueError(f"{resource}.{name}: field names must match {FIELD_NAME}")
            if fields.get("id") != "id":
                raise ValueError(f"{resource}: every resource needs a field 'id' of kind 'id'")
        return value


class DriftStep(StrictModel):
    """One schema change, applied once its trigger fires; each step bumps the version by one."""

    after_calls: int | None = Field(default=None, ge=0, description="service data calls served")
    after_seconds: float | None = Field(default=None, ge=0, description="seconds since start/reset")
    action: DriftAction
    resource: str
    field: str = Field(pattern=FIELD_NAME)
    to: str | None = Field(default=None, pattern=FIELD_NAME, description="new name (rename)")
    type: str | None = Field(default=None, description="kind (add) or target type (retype)")

    @model_validator(mode="after")
    def _trigger_and_args(self) -> DriftStep:
        if (self.after_calls is None) == (self.after_seconds is None):
            raise ValueError("set exactly one of after_calls or after_seconds")
        if self.action is DriftAction.rename and not self.to:
            raise ValueError("rename needs 'to' (the new field name)")
        if self.action is not DriftAction.rename and self.to:
            raise ValueError(f"'to' only applies to rename, not {self.action.value}")
        if self.action is DriftAction.retype and self.type not in RETYPE_TARGETS:
            raise ValueError(f"retype needs 'type', one of {', '.join(RETYPE_TARGETS)}")
        if self.action is DriftAction.add and (
            self.type is None or not re.match(FIELD_KIND_PATTERN, self.type)
        ):
            raise ValueError("add needs 'type', a field kind")
        if self.action is DriftAction.remove and self.type:
            raise ValueError("'type' does not apply to remove")
        return self


class Idempotency(StrictModel):
    supported: bool = Field(
        default=False, description="the server honours the Idempotency-Key header on POST"
    )
    key_ttl_seconds: int = Field(default=86400, ge=1)


class Tenant(StrictModel):
    """A customer account on the service. Credentials left out are generated at farm start."""

    id: str = Field(pattern=DNS_LABEL, max_length=63)
    client_id: str | None = Field(default=None, min_length=8, max_length=200)
    client_secret: str | None = Field(default=None, min_length=16, max_length=200)
    api_key: str | None = Field(default=None, min_length=16, max_length=200)
    rate_limit: RateLimit | None = None
    error_profile: ErrorProfile | None = Field(
        default=None, json_schema_extra=_error_profile_schema
    )
    network_profile: NetworkProfile | None = None

    _shorthand = field_validator("error_profile", mode="before")(_preset_shorthand)


class ServiceSpec(StrictModel):
    """A synthetic third-party API: the YAML file and the ``SyntheticService.spec``."""

    id: str = Field(
        pattern=SERVICE_ID,
        max_length=63,
        description="lower-case letters, digits, '-' and '_'; Kubernetes objects use it with "
        "'_' as '-'",
    )
    display_name: str | None = Field(default=None, max_length=100)
    protocol: Literal["rest"] = "rest"
    base_path: str = Field(pattern=r"^/[a-z0-9][a-z0-9/_-]*[a-z0-9]$")
    auth: Auth = Field(default_factory=Auth)
    rate_limit: RateLimit
    rate_limit_headers: RateLimitHeaders = Field(
        default=RateLimitHeaders.ietf,
        description="how responses describe the limit: ietf (RateLimit, RateLimit-Policy), "
        "github (X-RateLimit-*), retry_after (only Retry-After on a 429) or none",
    )
    error_profile: ErrorProfile = Field(
        default_factory=ErrorProfile, json_schema_extra=_error_profile_schema
    )
    network_profile: NetworkProfile = Field(default_factory=NetworkProfile)
    brownouts: BrownoutProfile | None = Field(
        default=None, description="brownout windows (default: the chaos level's, if any)"
    )
    outages: OutageProfile | None = Field(
        default=None, description="full outage windows (default: the chaos level's, if any)"
    )
    dialect: Dialect = Field(
        default_factory=Dialect, description="error bodies, rate-limit status, Retry-After format"
    )
    living: LivingData | None = Field(
        default=None,
        description="records that change during a run (each record then has version and "
        "updated_at)",
    )
    resources: list[Resource] = Field(min_length=1)
    schema_: Schema = Field(alias="schema")
    drift_schedule: list[DriftStep] = Field(default_factory=list)
    tenants: list[Tenant] = Field(default_factory=lambda: [Tenant(id="default")], min_length=1)
    idempotency: Idempotency = Field(default_factory=Idempotency)

    _shorthand = field_validator("error_profile", mode="before")(_preset_shorthand)

    @model_validator(mode="before")
    @classmethod
    def _flat_fields(cls, data: Any) -> Any:
        """``schema.fields`` as a flat list of ``{name, type}`` (seed 000: "a list of fields")
        describes every resource: it becomes the per-resource map."""
        if not isinstance(data, dict):
            return data
        schema = data.get("schema")
        if not isinstance(schema, dict) or not isinstance(schema.get("fields"), list):
            return data
        fields: dict[str, str] = {}
        for i, item in enumerate(schema["fields"]):
            if (
                not isinstance(item, dict)
                or set(item) != {"name", "type"}
                or not all(isinstance(v, str) for v in item.values())
            ):
                raise ValueError(
                    f"schema.fields[{i}]: expected {{name: <field>, type: <kind>}}, got {item!r}"
                )
            if item["name"] in fields:
                raise ValueError(f"schema.fields[{i}]: field {item['name']!r} listed twice")
            fields[item["name"]] = item["type"]
        resources = data.get("resources")
        names = [
            r["name"]
            for r in (resources if isinstance(resources, list) else [])
            if isinstance(r, dict) and isinstance(r.get("name"), str)
        ]
        return {**data, "schema": {**schema, "fields": {n: dict(fields) for n in names}}}

    @property
    def k8s_name(self) -> str:
        """The DNS-safe name Kubernetes objects of this service use."""
        return dns_name(self.id)

    @model_validator(mode="after")
    def _consistent(self) -> ServiceSpec:
        names = [r.name for r in self.resources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"resource names must be unique; repeated: {', '.join(dupes)}")
        for resource in self.resources:
            if resource.name not in self.schema_.fields:
                raise ValueError(f"schema.fields has no entry for resource '{resource.name}'")
            fields = self.schema_.fields[resource.name]
            if resource.lookup_field and resource.lookup_field not in fields:
                raise ValueError(
                    f"resource '{resource.name}': lookup_field '{resource.lookup_field}' "
                    "is not one of its schema fields"
                )
        for resource_name, resource_fields in self.schema_.fields.items():
            if resource_name not in names:
                raise ValueError(f"schema.fields.{resource_name} names no resource")
            for name, kind in resource_fields.items():
                if kind.startswith("ref:") and kind[4:] not in names:
                    raise ValueError(
                        f"schema.fields.{resource_name}.{name}: {kind} names no resource"
                    )
        tenant_ids = [t.id for t in self.tenants]
        if len(set(tenant_ids)) != len(tenant_ids):
            raise ValueError("tenant ids must be unique")
        self._check_drift()
        return self

    def _check_drift(self) -> None:
        # Replay the schedule over the field sets so every step names a field that exists then.
        current = {r: dict(f) for r, f in self.schema_.fields.items()}
        for i, step in enumerate(self.drift_schedule):
            where = f"drift_schedule[{i}]"
            if step.resource not in current:
                raise ValueError(f"{where}: resource '{step.resource}' does not exist")
            fields = current[step.resource]
            if step.field == "id" and step.action is not DriftAction.add:
                raise ValueError(f"{where}: the 'id' field cannot drift")
            if step.action is DriftAction.add:
                if step.field in fields:
                    raise ValueError(f"{where}: field '{step.field}' already exists")
                fields[step.field] = step.type or "string"
                continue
            if step.field not in fields:
                raise ValueError(
                    f"{where}: field '{step.field}' does not exist in '{step.resource}' "
                    f"at that point (fields: {', '.join(sorted(fields))})"
                )
            if step.action is DriftAction.rename:
                assert step.to is not None
                if step.to in fields:
                    raise ValueError(f"{where}: cannot rename to existing field '{step.to}'")
                fields[step.to] = fields.pop(step.field)
            elif step.action is DriftAction.remove:
                fields.pop(step.field)
            else:
                fields[step.field] = step.type or "string"

    # Convenience accessors used by the farm and the AAM.
    def resource(self, name: str) -> Resource:
        for r in self.resources:
            if r.name == name:
                return r
        raise KeyError(name)

    def tenant(self, tenant_id: str) -> Tenant:
        for t in self.tenants:
            if t.id == tenant_id:
                return t
        raise KeyError(tenant_id)

    def rate_limit_for(self, tenant_id: str) -> RateLimit:
        return self.tenant(tenant_id).rate_limit or self.rate_limit

    def error_profile_for(self, tenant_id: str) -> ErrorProfile:
        return self.tenant(tenant_id).error_profile or self.error_profile

    def network_profile_for(self, tenant_id: str) -> NetworkProfile:
        return self.tenant(tenant_id).network_profile or self.network_profile
