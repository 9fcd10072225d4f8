"""Schema drift: each action at its trigger (calls or seconds), rendering, writes in any version."""

from __future__ import annotations

from typing import Any

import httpx
from farm_helpers import admin_headers, auth_headers, make_spec

from farm.drift import retype
from farm.server import running_farm


def _drift(*steps: dict[str, Any]):  # type: ignore[no-untyped-def]
    return make_spec(drift_schedule=list(steps))


async def _versions_and_records(
    spec: Any, calls: int, path: str = "/shop/v1/customers"
) -> list[tuple[int, dict[str, Any]]]:
    async with running_farm([spec]) as farm, httpx.AsyncClient(base_url=farm.url) as client:
        headers = await auth_headers(client, farm, "shop", "acme")
        out = []
        for _ in range(calls):
            response = await client.get(path, headers=headers)
            assert response.status_code == 200
            out.append((int(response.headers["x-schema-version"]), response.json()["data"][0]))
        return out


async def test_rename_fires_after_n_calls() -> None:
    spec = _drift({"after_calls": 2, "action": "rename", "resource": "customers",
                   "field": "email", "to": "email_address"})  # fmt: skip
    seen = await _versions_and_records(spec, 3)
    assert [v for v, _ in seen] == [1, 1, 2]
    assert "email" in seen[1][1] and "email_address" not in seen[1][1]
    assert seen[2][1]["email_address"] == seen[1][1]["email"] and "email" not in seen[2][1]


async def test_remove_fires_after_n_calls() -> None:
    spec = _drift(
        {"after_calls": 1, "action": "remove", "resource": "customers", "field": "company"}
    )
    seen = await _versions_and_records(spec, 2)
    assert "company" in seen[0][1] and "company" not in seen[1][1]
    assert seen[1][0] == 2


async def test_add_gives_every_record_a_deterministic_new_field() -> None:
    spec = _drift({"after_calls": 1, "action": "add", "resource": "customers", "field": "tier",
                   "type": "status"})  # fmt: skip
    seen = await _versions_and_records(spec, 3)
    assert "tier" not in seen[0][1]
    assert seen[1][1]["tier"] == seen[2][1]["tier"] and isinstance(seen[1][1]["tier"], str)


async def test_retype_converts_the_value() -> None:
    spec = _drift({"after_calls": 1, "action": "retype", "resource": "invoices", "field": "amount",
                   "type": "string"})  # fmt: skip
    seen = await _versions_and_records(spec, 2, "/shop/v1/invoices")
    before, after = seen[0][1]["amount"], seen[1][1]["amount"]
    assert isinstance(before, float) and after == str(before)


def test_retype_conversions() -> None:
    assert retype(12.5, "string") == "12.5"
    assert retype(12.5, "integer") == 12
    assert retype("12.5", "number") == 12.5
    assert retype(0, "boolean") is False and retype("true", "boolean") is True
    assert retype("not a number", "integer") is None and retype(None, "string") is None


async def test_time_triggered_step_fires_after_t_seconds_and_is_in_the_ledger() -> None:
    spec = _drift(
        {"after_seconds": 30, "action": "rename", "resource": "customers", "field": "name",
         "to": "full_name"},
        {"after_calls": 0, "action": "remove", "resource": "customers", "field": "company"},
    )  # fmt: skip
    async with running_farm([spec]) as farm, httpx.AsyncClient(base_url=farm.url) as client:
        headers = await auth_headers(client, farm, "shop", "acme")
        first = await client.get("/shop/v1/customers", headers=headers)
        # Steps fire in order: the call-triggered second step waits for the timed first one.
        assert first.headers["x-schema-version"] == "1" and "name" in first.json()["data"][0]
        farm.app.farm.clock.advance(31)
        later = await client.get("/shop/v1/customers", headers=headers)
        record = later.json()["data"][0]
        assert later.headers["x-schema-version"] == "3"
        assert "full_name" in record and "name" not in record and "company" not in record
        ledger = (await client.get("/admin/ledger", headers=admin_headers(farm))).json()
        events = ledger["drift_events"]
        assert [(e["version"], e["action"], e["field"], e["to"]) for e in events] == [
            (2, "rename", "name", "full_name"),
            (3, "remove", "company", None),
        ]
        assert events[0]["at_seconds"] >= 30 and events[0]["at_call"] == 1
        status = (await client.get("/admin/status", headers=admin_headers(farm))).json()
        assert status["services"]["shop"]["schema_version"] == 3


async def test_writes_accept_any_versions_names_and_are_stored_in_version_one_shape() -> None:
    spec = _drift(
        {"after_calls": 0, "action": "rename", "resource": "invoices", "field": "external_id",
         "to": "reference"},
        {"after_calls": 0, "action": "retype", "resource": "invoices", "field": "amount",
         "type": "string"},
    )  # fmt: skip
    async with running_farm([spec]) as farm, httpx.AsyncClient(base_url=farm.url) as client:
        headers = await auth_headers(client, farm, "shop", "acme")
        new_names = {"reference": "r-1", "amount": "12.50"}
        old_names = {"external_id": "r-2", "amount": 3.25}
        for body in (new_names, old_names):
            created = await client.post("/shop/v1/invoices", json=body, headers=headers)
            assert created.status_code == 201
            assert "reference" in created.json() and isinstance(created.json()["amount"], str)
        canonical = await client.get(
            "/admin/records/shop/invoices",
            params={"tenant": "acme", "offset": 45},
            headers=admin_headers(farm),
        )
        stored = canonical.json()["data"]
        assert [(r["external_id"], r["amount"]) for r in stored] == [("r-1", 12.5), ("r-2", 3.25)]
