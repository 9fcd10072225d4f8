"""Helpers for the farm tests: an inline spec builder and small client shortcuts."""

from __future__ import annotations

from typing import Any

import httpx
import yaml

from farm.server import RunningFarm
from farm.spec import ServiceSpec

BASE_SPEC = """
id: shop
base_path: /shop/v1
auth: {type: oauth2_client_credentials, token_ttl_seconds: 60}
rate_limit: {max_rps: 1000, burst: 1000}
error_profile: {preset: none}
idempotency: {supported: true}
resources:
  - name: customers
    records: 30
    pagination: {style: cursor, page_size: 10, max_page_size: 20}
    endpoints:
      - {method: GET, path: /customers, paginated: true}
      - {method: GET, path: "/customers/{id}"}
  - name: invoices
    records: 45
    lookup_field: external_id
    pagination: {style: page, page_size: 10, max_page_size: 20}
    endpoints:
      - {method: GET, path: /invoices, paginated: true}
      - {method: GET, path: "/invoices/{id}"}
      - {method: POST, path: /invoices}
schema:
  fields:
    customers: {id: id, name: name, email: email, company: company}
    invoices:
      {id: id, customer_id: "ref:customers", amount: amount, due_date: date, external_id: string}
tenants:
  - id: acme
  - id: globex
"""


def make_spec(**overrides: Any) -> ServiceSpec:
    """The base spec with top-level keys replaced (``id``, ``auth``, ``drift_schedule``, ...)."""
    data = yaml.safe_load(BASE_SPEC)
    data.update(overrides)
    return ServiceSpec.model_validate(data)


async def get_token(client: httpx.AsyncClient, farm: RunningFarm, service: str, tenant: str) -> str:
    creds = farm.credentials[service][tenant]
    response = await client.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
        },
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def admin_headers(farm: RunningFarm) -> dict[str, str]:
    return {"Authorization": f"Bearer {farm.admin_token}"}


async def auth_headers(
    client: httpx.AsyncClient, farm: RunningFarm, service: str, tenant: str
) -> dict[str, str]:
    """Headers that authenticate as ``tenant`` of ``service`` (bearer token or API key)."""
    creds = farm.credentials[service][tenant]
    if creds["auth_type"] == "api_key":
        return {creds["api_key_header"]: creds["api_key"]}
    return {"Authorization": f"Bearer {await get_token(client, farm, service, tenant)}"}


async def outcome(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> str:
    """What a client observes: the status code, ``network`` (dropped) or ``timeout``."""
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.TimeoutException:
        return "timeout"
    except (httpx.RemoteProtocolError, httpx.ReadError):
        return "network"
    return str(response.status_code)
