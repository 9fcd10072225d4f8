"""The farm's ground truth survives a restart; the attempt log; identity headers; the lease."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import httpx
import pytest
from farm_helpers import admin_headers, auth_headers, make_spec, outcome

from farm.app import ADMIN_TOKEN_ENV, create_app
from farm.chaos import ChaosLevel
from farm.server import RunningFarm, running_farm
from farm.store import FILE_NAME

ADMIN = "admin-secret-for-durable-tests"


def _specs() -> list:
    return [make_spec(), make_spec(id="keyed", base_path="/keyed", auth={"type": "api_key"})]


async def test_a_restarted_farm_keeps_its_ledger_records_and_idempotency_keys(
    tmp_path: Path,
) -> None:
    state = tmp_path / "farm"
    async with (
        running_farm(_specs(), seed=7, admin_token=ADMIN, state_dir=state) as farm,
        httpx.AsyncClient(base_url=farm.url, timeout=10) as client,
    ):
        headers = await auth_headers(client, farm, "shop", "acme")
        created = []
        for i in range(5):
            r = await client.post(
                "/shop/v1/invoices",
                json={"external_id": f"op-{i}", "amount": i},
                headers={**headers, "Idempotency-Key": f"key-{i}"},
            )
            assert r.status_code == 201
            created.append(r.json())
        before = (await client.get("/admin/ledger", headers=admin_headers(farm))).json()
        boot_before = before["farm"]["boot_id"]
    assert len(before["writes"]) == 5

    async with (
        running_farm(_specs(), seed=7, admin_token=ADMIN, state_dir=state) as farm,
        httpx.AsyncClient(base_url=farm.url, timeout=10) as client,
    ):
        after = (await client.get("/admin/ledger", headers=admin_headers(farm))).json()
        assert after["writes"] == before["writes"]
        assert after["farm"]["boot_id"] != boot_before
        assert after["farm"]["epoch"] == before["farm"]["epoch"]
        assert after["farm"]["ledger_seq"] == before["farm"]["ledger_seq"]
        headers = await auth_headers(client, farm, "shop", "acme")
        fetched = await client.get(f"/shop/v1/invoices/{created[2]['id']}", headers=headers)
        assert fetched.status_code == 200 and fetched.json()["external_id"] == "op-2"
        # The same key after the restart replays the stored answer: no second commit.
        again = await client.post(
            "/shop/v1/invoices",
            json={"external_id": "op-3", "amount": 3},
            headers={**headers, "Idempotency-Key": "key-3"},
        )
        assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
        assert again.json() == created[3]
        new = await client.post("/shop/v1/invoices", json={"external_id": "op-9"}, headers=headers)
        assert new.json()["id"] not in {c["id"] for c in created}
        ledger = (await client.get("/admin/ledger", headers=admin_headers(farm))).json()
        assert len(ledger["writes"]) == 6
        assert ledger["writes"][-1]["seq"] == before["farm"]["ledger_seq"] + 1


async def test_state_files_are_private_and_the_generated_admin_token_persists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ADMIN_TOKEN_ENV, raising=False)
    state = tmp_path / "farm"
    first = create_app(_specs(), state_dir=state)
    token = first.farm.admin_token
    first.farm.close()
    second = create_app(_specs(), state_dir=state)
    assert second.farm.admin_token == token
    second.farm.close()
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    for name in (FILE_NAME, "admin-token", "credentials.json"):
        assert stat.S_IMODE(os.stat(state / name).st_mode) == 0o600, name


async def test_the_attempt_log_records_what_the_farm_saw(
    farm: RunningFarm, client: httpx.AsyncClient
) -> None:
    admin = admin_headers(farm)
    headers = await auth_headers(client, farm, "shop", "acme")
    token = headers["Authorization"].split()[1]
    await client.get("/shop/v1/customers?limit=5", headers=headers)
    await client.post(
        "/shop/v1/invoices",
        json={"external_id": "op-77", "amount": 1},
        headers={**headers, "Idempotency-Key": "k-77"},
    )
    await client.get("/shop/v1/invoices?external_id=op-77", headers=headers)
    await client.get("/shop/v1/customers", headers={"Authorization": "Bearer nope"})
    key_headers = await auth_headers(client, farm, "keyed", "globex")
    await client.get("/keyed/customers/cus_000001", headers=key_headers)
    body = (await client.get("/admin/attempts", headers=admin)).json()
    rows = body["attempts"]
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    listing, write, lookup, refused, keyed = rows[-5:]
    assert listing["method"] == "GET" and listing["query"] == "limit=5"
    assert listing["status"] == 200 and listing["tenant"] == "acme"
    assert listing["credential"].startswith(farm.credentials["shop"]["acme"]["client_id"] + "#")
    assert write["committed"] is True and write["status"] == 201
    ledger = (await client.get("/admin/ledger", headers=admin)).json()
    assert write["ledger_seq"] == ledger["writes"][-1]["seq"]
    assert write["lookup_value"] == "op-77" and write["idempotency_key"] == "k-77"
    assert lookup["lookup_value"] == "op-77" and lookup["committed"] is False
    assert refused["status"] == 401 and refused["tenant"] is None
    assert refused["credential"].startswith("unknown-token:")
    assert keyed["credential"] == "api_key:keyed:globex" and keyed["status"] == 200
    text = str(body)
    assert token not in text and farm.credentials["keyed"]["globex"]["api_key"] not in text
    # Paging and the service filter.
    page = (await client.get("/admin/attempts?limit=2", headers=admin)).json()
    assert len(page["attempts"]) == 2 and page["next_since_seq"] == page["attempts"][-1]["seq"]
    rest = (
        await client.get(f"/admin/attempts?since_seq={page['next_since_seq']}", headers=admin)
    ).json()
    assert [r["seq"] for r in page["attempts"] + rest["attempts"]] == [r["seq"] for r in rows]
    only = (await client.get("/admin/attempts?service=keyed", headers=admin)).json()
    assert [r["service"] for r in only["attempts"]] == ["keyed"]


async def test_the_attempt_log_records_faults_retry_after_and_transport_faults() -> None:
    spec = make_spec(
        rate_limit={"max_rps": 0.5, "burst": 2},
        error_profile={"preset": "none"},
        network_profile={"timeout_probability": 0.0},
    )
    async with (
        running_farm([spec], seed=3, admin_token=ADMIN) as farm,
        httpx.AsyncClient(base_url=farm.url, timeout=10) as client,
    ):
        headers = await auth_headers(client, farm, "shop", "acme")
        for _ in range(3):
            await client.get("/shop/v1/customers", headers=headers)
        farm.app.farm.set_chaos(ChaosLevel.hell)
        farm.app.farm.services["shop"].tenants["acme"].bucket.reshape(10_000, 10_000, 0)
        seen = set()
        for _ in range(60):
            seen.add(await outcome(client, "GET", "/shop/v1/customers", headers=headers))
        rows = (
            await client.get("/admin/attempts?limit=10000", headers=admin_headers(farm))
        ).json()["attempts"]
    limited = [r for r in rows if r["status"] == 429 and r["fault"] is None]
    assert limited and all(int(r["retry_after"]) >= 1 for r in limited)
    faulted = [r for r in rows if r["fault"] is not None]
    assert faulted, "hell injected no fault in 60 calls"
    if "network" in seen:
        dropped = [r for r in rows if r["transport_fault"] == "network"]
        assert dropped and all(r["fault"] == "network" for r in dropped)
    assert {r["fault"] for r in rows if r["status"] in (500, 502, 503)} <= {"server_error"}


async def test_every_admin_answer_carries_the_farm_identity(
    farm: RunningFarm, client: httpx.AsyncClient
) -> None:
    admin = admin_headers(farm)
    boot = farm.app.farm.boot_id
    for method, path in (
        ("GET", "/admin/status"),
        ("GET", "/admin/ledger"),
        ("GET", "/admin/attempts"),
        ("GET", "/admin/lease"),
        ("GET", "/admin/credentials"),
        ("POST", "/admin/reset"),
    ):
        r = await client.request(method, path, headers=admin)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["x-farm-boot-id"] == boot
        assert int(r.headers["x-farm-ledger-seq"]) >= 0 and "x-farm-epoch" in r.headers
    assert r.headers["x-farm-epoch"] == "1"


async def test_the_lease_is_exclusive_and_guards_chaos_and_reset(
    farm: RunningFarm, client: httpx.AsyncClient
) -> None:
    admin = admin_headers(farm)
    first = await client.post("/admin/lease", json={"holder": "run A", "ttl_seconds": 60},
                              headers=admin)  # fmt: skip
    assert first.status_code == 200
    lease_id = first.json()["lease_id"]
    second = await client.post("/admin/lease", json={"holder": "run B"}, headers=admin)
    assert second.status_code == 409
    refusal = second.json()
    assert refusal["error"] == "farm_leased" and refusal["lease"]["holder"] == "run A"
    assert refusal["lease"]["expires_in"] > 0 and lease_id not in second.text
    for path, body in (("/admin/chaos", {"level": "hell"}), ("/admin/reset", {})):
        refused = await client.post(path, json=body, headers=admin)
        assert refused.status_code == 409 and refused.json()["error"] == "farm_leased"
        wrong = await client.post(path, json=body, headers={**admin, "X-Farm-Lease": "guess"})
        assert wrong.status_code == 409
        mine = await client.post(path, json=body, headers={**admin, "X-Farm-Lease": lease_id})
        assert mine.status_code == 200
    renewed = await client.put(f"/admin/lease/{lease_id}", json={"ttl_seconds": 5},
                               headers=admin)  # fmt: skip
    assert renewed.status_code == 200 and renewed.json()["expires_in"] <= 5
    assert (await client.put("/admin/lease/nope", headers=admin)).status_code == 404
    assert (await client.delete(f"/admin/lease/{lease_id}", headers=admin)).status_code == 200
    assert (await client.post("/admin/chaos", json={"level": "calm"}, headers=admin)).is_success
    assert (await client.post("/admin/lease", json={"holder": "run B"}, headers=admin)).is_success


async def test_an_expired_lease_puts_the_farm_back_to_calm_by_itself(
    farm: RunningFarm, client: httpx.AsyncClient
) -> None:
    admin = admin_headers(farm)
    lease = await client.post("/admin/lease", json={"holder": "crashed run", "ttl_seconds": 1},
                              headers=admin)  # fmt: skip
    lease_id = lease.json()["lease_id"]
    await client.post("/admin/chaos", json={"level": "hell"},
                      headers={**admin, "X-Farm-Lease": lease_id})  # fmt: skip
    state = farm.app.farm
    assert state.chaos.level is ChaosLevel.hell
    # Nobody calls the farm: its own timer must notice the lapse (bounded wait).
    for _ in range(200):
        if state.chaos.level is ChaosLevel.calm:
            break
        await asyncio.sleep(0.05)
    assert state.chaos.level is ChaosLevel.calm
    assert state.leases.current() is None
    taken = await client.post("/admin/lease", json={"holder": "next run"}, headers=admin)
    assert taken.status_code == 200
