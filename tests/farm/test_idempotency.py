"""Idempotency-Key: replay vs duplicate commit, key reuse with another body, key validation."""

from __future__ import annotations

from typing import Any

import httpx
from farm_helpers import admin_headers, auth_headers, make_spec

from farm.clock import Clock
from farm.idempotency import IdempotencyStore, StoredResponse, Verdict
from farm.server import RunningFarm, running_farm

BODY = {"customer_id": "cus_000002", "amount": 42.0, "external_id": "op-7"}


async def _ledger(client: httpx.AsyncClient, farm: RunningFarm) -> list[dict[str, Any]]:
    return (await client.get("/admin/ledger", headers=admin_headers(farm))).json()["writes"]


async def test_repeated_key_replays_the_stored_response_without_committing_again(
    farm,
    client: httpx.AsyncClient,  # type: ignore[no-untyped-def]
) -> None:
    headers = {**await auth_headers(client, farm, "shop", "acme"), "Idempotency-Key": "op-7"}
    first = await client.post("/shop/v1/invoices", json=BODY, headers=headers)
    again = await client.post("/shop/v1/invoices", json=BODY, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    writes = await _ledger(client, farm)
    assert [(w["record_id"], w["idempotency_key"]) for w in writes] == [
        (first.json()["id"], "op-7")
    ]
    status = (await client.get("/admin/status", headers=admin_headers(farm))).json()
    acme = status["services"]["shop"]["tenants"]["acme"]
    assert acme["writes_committed"] == 1 and acme["idempotent_replays"] == 1


async def test_same_key_with_another_body_is_422(
    farm: RunningFarm, client: httpx.AsyncClient
) -> None:
    headers = {**await auth_headers(client, farm, "shop", "acme"), "Idempotency-Key": "k-1"}
    assert (await client.post("/shop/v1/invoices", json=BODY, headers=headers)).status_code == 201
    other = await client.post("/shop/v1/invoices", json={**BODY, "amount": 1.0}, headers=headers)
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reuse"
    assert len(await _ledger(client, farm)) == 1


async def test_keys_are_scoped_per_tenant(farm: RunningFarm, client: httpx.AsyncClient) -> None:
    for tenant in ("acme", "globex"):
        headers = {**await auth_headers(client, farm, "shop", tenant), "Idempotency-Key": "same"}
        response = await client.post("/shop/v1/invoices", json=BODY, headers=headers)
        assert response.status_code == 201 and "idempotent-replayed" not in response.headers
    assert len(await _ledger(client, farm)) == 2


async def test_service_without_idempotency_commits_a_duplicate() -> None:
    spec = make_spec(idempotency={"supported": False})
    async with running_farm([spec]) as farm, httpx.AsyncClient(base_url=farm.url) as client:
        headers = {**await auth_headers(client, farm, "shop", "acme"), "Idempotency-Key": "op-7"}
        first = await client.post("/shop/v1/invoices", json=BODY, headers=headers)
        again = await client.post("/shop/v1/invoices", json=BODY, headers=headers)
        assert first.status_code == again.status_code == 201
        assert first.json()["id"] != again.json()["id"]
        writes = await _ledger(client, farm)
        assert [w["lookup_value"] for w in writes] == ["op-7", "op-7"]
        assert writes[0]["body_sha256"] == writes[1]["body_sha256"]


async def test_malformed_key_is_400(farm: RunningFarm, client: httpx.AsyncClient) -> None:
    headers = {**await auth_headers(client, farm, "shop", "acme"), "Idempotency-Key": "x" * 256}
    response = await client.post("/shop/v1/invoices", json=BODY, headers=headers)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_store_refuses_a_key_in_flight_and_frees_an_abandoned_one() -> None:
    store = IdempotencyStore(Clock())
    scope = ("shop", "acme", "k")
    assert store.begin(scope, "fp", 60)[0] is Verdict.NEW
    assert store.begin(scope, "fp", 60)[0] is Verdict.IN_FLIGHT
    store.abandon(scope)
    assert store.begin(scope, "fp", 60)[0] is Verdict.NEW
    store.complete(scope, StoredResponse(201, b"{}"))
    assert store.begin(scope, "fp", 60) == (Verdict.REPLAY, StoredResponse(201, b"{}"))


def test_keys_expire_after_their_ttl() -> None:
    clock = Clock()
    store = IdempotencyStore(clock)
    scope = ("shop", "acme", "k")
    store.begin(scope, "fp", 10)
    store.complete(scope, StoredResponse(201, b"{}"))
    clock.advance(11)
    assert store.begin(scope, "other", 10)[0] is Verdict.NEW
