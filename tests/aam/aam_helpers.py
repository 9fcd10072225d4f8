"""Helpers for the AAM tests: small purpose-built service specs and a farm admin client."""

from __future__ import annotations

from typing import Any

import httpx

from aam import ConnectorDescriptor, TenantCredentials
from farm.spec import ServiceSpec


def make_spec(**overrides: Any) -> ServiceSpec:
    """A small, quiet service: no faults unless a test asks for them."""
    raw: dict[str, Any] = {
        "id": "svc",
        "base_path": "/svc/v1",
        "auth": {"type": "api_key"},
        "rate_limit": {"max_rps": 5000, "burst": 5000},
        "error_profile": {"preset": "none"},
        "resources": [
            {
                "name": "items",
                "records": 30,
                "lookup_field": "external_id",
                "pagination": {"style": "cursor", "page_size": 10, "max_page_size": 50},
                "endpoints": [
                    {"method": "GET", "path": "/items", "paginated": True},
                    {"method": "GET", "path": "/items/{id}"},
                    {"method": "POST", "path": "/items"},
                ],
            }
        ],
        "schema": {
            "version": 1,
            "fields": {
                "items": {
                    "id": "id",
                    "name": "name",
                    "amount": "amount",
                    "email": "email",
                    "external_id": "string",
                }
            },
        },
        "tenants": [{"id": "acme"}, {"id": "globex"}],
    }
    for key, value in overrides.items():
        raw[key] = value
    return ServiceSpec.model_validate(raw)


class Farm:
    """A running farm plus admin helpers."""

    def __init__(self, running: Any) -> None:
        self.running = running
        self.url: str = running.url
        self.admin = httpx.AsyncClient(
            base_url=running.url, headers={"authorization": f"Bearer {running.admin_token}"}
        )

    def credentials(self, service: str, tenant: str) -> TenantCredentials:
        return TenantCredentials.from_farm(self.running.credentials[service][tenant])

    async def chaos(self, level: str, service: str | None = None) -> None:
        body: dict[str, Any] = {"level": level}
        if service:
            body["service"] = service
        r = await self.admin.post("/admin/chaos", json=body)
        r.raise_for_status()

    async def status(self) -> dict[str, Any]:
        r = await self.admin.get("/admin/status")
        r.raise_for_status()
        return r.json()  # type: ignore[no-any-return]

    async def ledger(self, service: str | None = None) -> dict[str, Any]:
        r = await self.admin.get("/admin/ledger", params={"service": service} if service else None)
        r.raise_for_status()
        return r.json()  # type: ignore[no-any-return]

    async def tenant_status(self, service: str, tenant: str) -> dict[str, Any]:
        return (await self.status())["services"][service]["tenants"][tenant]  # type: ignore[no-any-return]


async def run_concurrently(n: int, call: Any, concurrency: int = 32) -> list[Any]:
    """Run ``call(i)`` for i in range(n) with at most ``concurrency`` in flight; results or
    exceptions, in order."""
    import asyncio

    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Any:
        async with sem:
            try:
                return await call(i)
            except Exception as exc:  # collected for the test to inspect
                return exc

    return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), timeout=60)


def error_classes(results: list[Any]) -> dict[str, int]:
    """Count AamError leaves by error_class in a result list."""
    from aam.errors import AamError

    out: dict[str, int] = {}
    for r in results:
        if isinstance(r, AamError):
            out[r.error_class] = out.get(r.error_class, 0) + 1
        elif isinstance(r, Exception):
            raise r
    return out


def describe(
    spec: ServiceSpec, tenant: str, creds: TenantCredentials | dict[str, Any], base_url: str
) -> ConnectorDescriptor:
    """The descriptor the runner would build for ``spec``/``tenant`` served at ``base_url``."""
    from workflows.descriptors import descriptor_for

    if isinstance(creds, TenantCredentials):
        creds = {
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            "api_key": creds.api_key,
            "token_url": creds.token_url,
        }
    return descriptor_for(spec, tenant, creds, base_url)
