"""Connector descriptors from service specs: the projection an AAM is allowed to see.

The farm's spec holds the service's public documentation *and* its private behaviour (faults,
drift schedule, token rotation, tenant overrides it would never publish). The runner hands the AAM
under test only :func:`descriptor_for`'s output: base URL, auth scheme and one tenant's
credentials, the published rate limit, idempotency support and the resources' paths and
version-1 fields. ``tests/workflows/test_descriptors.py`` checks that nothing private leaks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aam.descriptor import (
    ApiKeyAuth,
    ConnectorDescriptor,
    IdempotencySupport,
    NoAuth,
    OAuth2ClientCredentials,
    PublishedRateLimit,
    ResourceDescriptor,
)
from farm.spec import AuthType, HttpMethod, ServiceSpec


class DescriptorError(ValueError):
    """The farm's credentials for a tenant do not fit the service's auth scheme."""


def _resource(spec: ServiceSpec, name: str) -> ResourceDescriptor:
    resource = spec.resource(name)
    collection = item = None
    methods: list[str] = []
    paginated = False
    for endpoint in resource.endpoints:
        if endpoint.is_item:
            item = endpoint.path
        else:
            collection = endpoint.path
            methods.append(endpoint.method.value)
            paginated = paginated or (endpoint.paginated and endpoint.method is HttpMethod.GET)
    fields = dict(spec.schema_.fields[name])
    living = spec.living
    if living is not None:
        # Documented like any field: records carry a version and when it was last changed.
        fields.setdefault("version", "integer")
        fields.setdefault("updated_at", "datetime")
    return ResourceDescriptor(
        collection=collection,
        item=item,
        lookup_field=resource.lookup_field,
        pagination=resource.pagination.style.value if paginated else None,  # type: ignore[arg-type]
        fields=fields,
        collection_methods=sorted(set(methods)) or ["GET"],  # type: ignore[arg-type]
        order=living.order.value if living is not None and paginated else None,  # type: ignore[arg-type]
        cursor_ttl_seconds=living.cursor_ttl_seconds if living is not None else None,
        cursor_expired_status=(
            living.cursor_expired_status
            if living is not None and living.cursor_ttl_seconds is not None
            else None
        ),
    )


def descriptor_for(
    spec: ServiceSpec,
    tenant: str,
    credentials: Mapping[str, Any],
    farm_url: str,
    *,
    publish_rate_limit: bool = True,
) -> ConnectorDescriptor:
    """The descriptor of ``spec`` for ``tenant``, served at ``farm_url``.

    ``credentials`` is the tenant's entry of the farm's ``GET /admin/credentials``. The published
    rate limit is the tenant's documented one (``publish_rate_limit=False`` leaves it out, as for
    a provider that documents none): what chaos does to it is for the AAM to find out.
    """
    spec.tenant(tenant)  # KeyError for a tenant the service does not have
    root = farm_url.rstrip("/")
    where = f"{spec.id}/{tenant}"
    auth: ApiKeyAuth | OAuth2ClientCredentials | NoAuth
    if spec.auth.type is AuthType.api_key:
        key = credentials.get("api_key")
        if not key:
            raise DescriptorError(f"{where}: the farm gave no api_key for an api_key service")
        auth = ApiKeyAuth(header=spec.auth.api_key_header, key=str(key))
    elif spec.auth.type is AuthType.oauth2_client_credentials:
        cid, secret = credentials.get("client_id"), credentials.get("client_secret")
        if not (cid and secret):
            raise DescriptorError(f"{where}: the farm gave no client_id/client_secret for OAuth2")
        token_url = str(credentials.get("token_url") or "/oauth2/token")
        if not token_url.startswith(("http://", "https://")):
            token_url = root + "/" + token_url.lstrip("/")
        auth = OAuth2ClientCredentials(
            token_url=token_url, client_id=str(cid), client_secret=str(secret)
        )
    else:
        auth = NoAuth()
    limit = spec.rate_limit_for(tenant)
    return ConnectorDescriptor(
        connector_id=f"{spec.id}:{tenant}",
        service=spec.id,
        tenant=tenant,
        base_url=root + spec.base_path,
        auth=auth,
        rate_limit=(
            PublishedRateLimit(max_rps=limit.max_rps, burst=limit.burst)
            if publish_rate_limit
            else None
        ),
        idempotency=IdempotencySupport(supported=spec.idempotency.supported),
        resources={r.name: _resource(spec, r.name) for r in spec.resources},
        rate_limit_status=spec.dialect.rate_limit_status,
    )


def full_path(spec: ServiceSpec, relative: str) -> str:
    """The farm-side path of a descriptor-relative one (base path prepended)."""
    return spec.base_path + relative
