"""The connector descriptor: what a service's public documentation says, plus one tenant's
credentials (DESIGN.md, "AAM-under-test contract (v1)").

It is everything an AAM is told about an API. It never carries a provider's private behaviour
(fault profiles, drift schedule, token rotation schedule, chaos level): the AAM learns those from
the wire. Secrets are kept out of ``repr``. Unknown keys are refused, so a typo is an error.

```json
{"connector_id": "stripe:acme", "service": "stripe", "tenant": "acme",
 "base_url": "http://127.0.0.1:8001/stripe/v1",
 "auth": {"type": "api_key", "header": "X-API-Key", "key": "..."},
 "rate_limit": {"max_rps": 100, "burst": 50},
 "idempotency": {"supported": true, "header": "Idempotency-Key"},
 "resources": {"invoices": {"collection": "/invoices", "item": "/invoices/{id}",
                            "lookup_field": "external_id", "pagination": "cursor",
                            "fields": {"id": "id", "amount": "amount"}}}}
```
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_ID = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: Service ids may contain underscores (the seed's ``my_service_mock``).
_SERVICE = r"^[a-z0-9]([-_a-z0-9]*[a-z0-9])?$"
_PATH = r"^/[A-Za-z0-9_/{}.~-]*$"
_HEADER = r"^[A-Za-z0-9-]+$"
_CONNECTOR = r"^[a-z0-9]([-_a-z0-9]*[a-z0-9])?:[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiKeyAuth(_Model):
    """A static key sent in a header on every request."""

    type: Literal["api_key"] = "api_key"
    header: str = Field(default="X-API-Key", pattern=_HEADER)
    key: str = Field(min_length=1, max_length=500, repr=False)


class OAuth2ClientCredentials(_Model):
    """RFC 6749 section 4.4: trade the client id and secret for bearer tokens."""

    type: Literal["oauth2_client_credentials"] = "oauth2_client_credentials"
    token_url: str = Field(pattern=r"^https?://", max_length=2000)
    client_id: str = Field(min_length=1, max_length=500)
    client_secret: str = Field(min_length=1, max_length=500, repr=False)
    scope: str | None = Field(default=None, max_length=500)  # optional (v1 extra)


class NoAuth(_Model):
    """An open API."""

    type: Literal["none"] = "none"


Auth = Annotated[ApiKeyAuth | OAuth2ClientCredentials | NoAuth, Field(discriminator="type")]


class PublishedRateLimit(_Model):
    """The limit the provider documents for this tenant (what happens under load may differ)."""

    max_rps: float = Field(gt=0, le=1_000_000)
    burst: int = Field(default=1, ge=1, le=1_000_000)


class IdempotencySupport(_Model):
    """Whether the provider honours an idempotency key on POST, and in which header."""

    supported: bool = False
    header: str = Field(default="Idempotency-Key", pattern=_HEADER)


class ResourceDescriptor(_Model):
    """One REST collection: its paths (relative to ``base_url``), lookup field and v1 fields."""

    collection: str | None = Field(default=None, pattern=_PATH)
    item: str | None = Field(default=None, pattern=_PATH)
    lookup_field: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]*$")
    #: ``link``: a bare JSON array per page, the next page in the ``Link`` header (GitHub).
    pagination: Literal["cursor", "page", "offset", "link"] | None = None
    #: Listing order, when the provider documents it (v1 extra).
    order: Literal["oldest_first", "newest_first"] | None = None
    #: How long a cursor stays valid and what an expired one answers (v1 extra, documented
    #: by providers whose cursors expire).
    cursor_ttl_seconds: float | None = Field(default=None, gt=0)
    cursor_expired_status: int | None = Field(default=None, ge=400, le=499)
    #: Version-1 field name -> kind (``id``, ``string``, ``amount``, ``integer``, ... ``ref:x``).
    fields: dict[str, str] = Field(default_factory=dict)
    #: Methods the collection path takes (v1 extra; default: GET only).
    collection_methods: list[Literal["GET", "POST"]] = Field(default_factory=lambda: ["GET"])

    @model_validator(mode="after")
    def _a_path(self) -> ResourceDescriptor:
        if self.collection is None and self.item is None:
            raise ValueError("a resource needs a 'collection' or an 'item' path")
        if self.item is not None and "{id}" not in self.item:
            raise ValueError("'item' must contain {id}, e.g. /invoices/{id}")
        return self


class ConnectorDescriptor(_Model):
    """Everything one connector is told: public facts and one tenant's credentials."""

    connector_id: str = Field(pattern=_CONNECTOR)
    service: str = Field(pattern=_SERVICE, max_length=63)
    tenant: str = Field(pattern=_ID, max_length=63)
    base_url: str = Field(pattern=r"^https?://[^\s?#]+$", max_length=2000)
    auth: Auth = Field(default_factory=NoAuth)
    rate_limit: PublishedRateLimit | None = None
    idempotency: IdempotencySupport = Field(default_factory=IdempotencySupport)
    resources: dict[str, ResourceDescriptor] = Field(default_factory=dict)
    #: The status a rate limit answers with (v1 extra): 429, or 403 for providers that say so
    #: in their documentation (GitHub secondary limits, Salesforce REQUEST_LIMIT_EXCEEDED).
    rate_limit_status: Literal[429, 403] = 429

    @model_validator(mode="after")
    def _consistent(self) -> ConnectorDescriptor:
        if self.connector_id != f"{self.service}:{self.tenant}":
            raise ValueError(
                f"connector_id must be '<service>:<tenant>' = '{self.service}:{self.tenant}', "
                f"got '{self.connector_id}'"
            )
        return self

    def __repr__(self) -> str:  # the auth model already hides its secret
        return f"ConnectorDescriptor({self.connector_id!r}, base_url={self.base_url!r})"
