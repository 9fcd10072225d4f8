"""The farm over a real socket: tokens, pagination, records, writes, admin basics."""

from __future__ import annotations

import httpx
from farm_helpers import admin_headers, get_token

from farm.server import RunningFarm


async def test_running_farm_exposes_url_token_and_credentials(
    farm: RunningFarm, client: httpx.AsyncClient
) -> None:
    assert farm.url.startswith("http://127.0.0.1:")
    assert set(farm.credentials) == {"shop", "keyed"}
    assert farm.credentials["shop"]["acme"]["token_url"] == "/oauth2/token"
    assert farm.credentials["keyed"]["acme"]["api_key_header"] == "X-API-Key"
    response = await client.get("/admin/credentials", headers=admin_headers(farm))
    assert response.json()["services"] == farm.credentials
    assert (await client.get("/healthz")).json() == {"status": "ok", "services": 2}


async def test_pagination_follows_next_links_through_every_record(
    farm: RunningFarm, client: httpx.AsyncClient
) -> None:
    headers = {"Authorization": f"Bearer {await get_token(client, farm, 'shop', 'acme')}"}
    for path, total in (("/shop/v1/customers", 30), ("/shop/v1/invoices", 45)):
        seen: list[str] = []
        url: str | None = path
        for _ in range(20):
            if url is None:
                break
            response = await client.get(url, headers=headers)
            assert response.status_code == 200, response.text
            assert response.headers["x-schema-version"] == "1"
            assert response.headers["x-request-id"]
            page = response.json()
            seen += [r["id"] for r in page["data"]]
            url = page["next"]
        assert url is None
        assert len(seen) == total == len(set(seen))


async def test_invoices_reference_existing_customers(
    farm: RunningFarm, client: httpx.AsyncClient
) -> None:
    headers = {"Authorization": f"Bearer {await get_token(client, farm, 'shop', 'acme')}"}
    invoices = (await client.get("/shop/v1/invoices?per_page=20", headers=headers)).json()["data"]
    for invoice in invoices[:5]:
        customer = await client.get(f"/shop/v1/customers/{invoice['customer_id']}", headers=headers)
        assert customer.status_code == 200
        assert customer.json()["id"] == invoice["customer_id"]
        assert "@" in customer.json()["email"]
    missing = await client.get("/shop/v1/customers/cus_999999", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"


async def test_post_creates_a_record_findable_by_lookup_field(
    farm: RunningFarm, client: httpx.AsyncClient
) -> None:
    headers = {"Authorization": f"Bearer {await get_token(client, farm, 'shop', 'acme')}"}
    body = {"customer_id": "cus_000001", "amount": 99.5, "external_id": "op-1"}
    created = await client.post("/shop/v1/invoices", json=body, headers=headers)
    assert created.status_code == 201
    record = created.json()
    assert record["id"] == "inv_000046" and record["amount"] == 99.5 and record["created_at"]
    found = await client.get("/shop/v1/invoices", params={"external_id": "op-1"}, headers=headers)
    assert found.json()["data"] == [record]
    ledger = (await client.get("/admin/ledger", headers=admin_headers(farm))).json()
    assert [(w["record_id"], w["lookup_value"], w["outcome"]) for w in ledger["writes"]] == [
        ("inv_000046", "op-1", "ok")
    ]
