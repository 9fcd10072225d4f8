"""Living data: records updated during a run (every version kept), records other users create
during a scan, newest-first listings, cursors that expire."""

from __future__ import annotations

import asyncio
import time

import httpx
from farm_helpers import admin_headers, auth_headers, make_spec

from farm.records import RecordStore
from farm.server import running_farm

LIVING = {"update_share": 0.5, "updates_per_minute": 6000}


def _versions(seed: int, now: float) -> dict[int, list[tuple[int, str | None]]]:
    spec = make_spec(living=LIVING)
    store = RecordStore({spec.id: spec}, seed, started=1000.0)
    table = store.table("shop", "acme", "customers", now)
    assert table.living is not None
    return {
        i: [(v.version, v.record.get("email")) for v in versions]
        for i, versions in table.living.history.items()
    }


def _sinces(seed: int, now: float) -> list[list[float]]:
    spec = make_spec(living=LIVING)
    table = RecordStore({spec.id: spec}, seed, started=1000.0).table(
        "shop", "acme", "customers", now
    )
    assert table.living is not None
    return [[v.since for v in versions] for versions in table.living.history.values()]


def test_updates_come_from_the_seed_and_keep_every_version() -> None:
    first = _versions(3, 1001.0)
    assert first == _versions(3, 1001.0) and first != _versions(4, 1001.0)
    assert 60 <= sum(len(v) - 1 for v in first.values()) <= 140  # ~100 updates in one second
    for chain in first.values():
        assert [v for v, _ in chain] == list(range(1, len(chain) + 1))
    for sinces in _sinces(3, 1001.0):
        # Versions carry the Unix time they became current (the farm clock is monotonic).
        assert sinces[0] == 0.0 and sinces[1:] == sorted(sinces[1:])
        assert all(abs(since - time.time()) < 5 for since in sinces[1:])
    spec = make_spec(living=LIVING)
    table = RecordStore({spec.id: spec}, 3, started=1000.0).table("shop", "acme", "customers")
    assert table.living is not None
    updatable = [i for i in range(table.seeded) if table.living.updatable(i)]
    assert set(first) <= set(updatable) and 5 <= len(updatable) <= 25  # about half of 30


async def test_the_api_serves_the_latest_version_and_admin_keeps_the_history() -> None:
    spec = make_spec(living=LIVING, tenants=[{"id": "acme"}])
    async with running_farm([spec], seed=2) as farm, httpx.AsyncClient(base_url=farm.url) as c:
        headers = await auth_headers(c, farm, "shop", "acme")
        await asyncio.sleep(0.3)
        page = (await c.get("/shop/v1/customers?limit=20", headers=headers)).json()["data"]
        page += (await c.get("/shop/v1/customers?limit=20&cursor=" + _cursor(20), headers=headers)
                 ).json()["data"]  # fmt: skip
        assert all({"version", "updated_at"} <= set(r) for r in page)
        changed = [r for r in page if r["version"] > 1]
        assert changed
        history = (
            await c.get(
                "/admin/records/shop/customers/versions?tenant=acme", headers=admin_headers(farm)
            )
        ).json()
        assert history["living"] and history["updates"] >= len(changed)
        for record in changed:
            chain = history["records"][record["id"]]
            assert [v["version"] for v in chain][: record["version"]] == list(
                range(1, record["version"] + 1)
            )
            assert chain[record["version"] - 1]["record"] == record
            one = (
                await c.get(
                    f"/admin/records/shop/customers/{record['id']}/versions?tenant=acme",
                    headers=admin_headers(farm),
                )
            ).json()
            assert one["versions"][0]["version"] == 1 and one["versions"][0]["since"] is None
        missing = await c.get(
            "/admin/records/shop/customers/cus_999999/versions?tenant=acme",
            headers=admin_headers(farm),
        )
        assert missing.status_code == 404


def _cursor(offset: int) -> str:
    from farm.pagination import encode_cursor

    return encode_cursor(offset)


async def _scan(c: httpx.AsyncClient, url: str, headers: dict[str, str]) -> list[str]:
    seen: list[str] = []
    next_url: str | None = url
    for _ in range(100):
        if next_url is None:
            break
        body = (await c.get(next_url, headers=headers)).json()
        seen += [r["id"] for r in body["data"]]
        next_url = body["next"]
        await asyncio.sleep(0.05)  # other users create records meanwhile
    return seen


async def test_newest_first_page_scans_shift_and_cursor_scans_do_not() -> None:
    living = {"creates_per_minute": 1200, "order": "newest_first"}
    spec = make_spec(living=living, tenants=[{"id": "acme"}])
    async with running_farm([spec], seed=2) as farm, httpx.AsyncClient(base_url=farm.url) as c:
        headers = await auth_headers(c, farm, "shop", "acme")
        # Page-numbered (invoices): records created at the top push older ones onto the next
        # page, so a scan sees some twice.
        pages = await _scan(c, "/shop/v1/invoices?per_page=5", headers)
        assert len(pages) > len(set(pages))
        assert {f"inv_{i:06d}" for i in range(1, 46)} <= set(pages)
        # Cursor (customers): a keyset cursor is stable: each record once, none missed.
        ids = await _scan(c, "/shop/v1/customers?limit=5", headers)
        assert len(ids) == len(set(ids))
        assert {f"cus_{i:06d}" for i in range(1, 31)} <= set(ids)
        assert ids[:3] != ["cus_000001", "cus_000002", "cus_000003"]  # newest first
        assert [int(i[4:]) for i in ids] == sorted((int(i[4:]) for i in ids), reverse=True)
        versions = (
            await c.get(
                "/admin/records/shop/customers/versions?tenant=acme", headers=admin_headers(farm)
            )
        ).json()
        assert versions["created_by_others"] > 0
        ledger = (await c.get("/admin/ledger", headers=admin_headers(farm))).json()
        assert ledger["writes"] == []  # other users' records are not client writes


async def test_an_expired_cursor_is_a_documented_error_and_a_restart_works() -> None:
    living = {"cursor_ttl_seconds": 0.2, "cursor_expired_status": 410}
    spec = make_spec(living=living, tenants=[{"id": "acme"}])
    async with running_farm([spec], seed=2) as farm, httpx.AsyncClient(base_url=farm.url) as c:
        headers = await auth_headers(c, farm, "shop", "acme")
        first = (await c.get("/shop/v1/customers?limit=5", headers=headers)).json()
        fresh = await c.get(first["next"], headers=headers)
        assert fresh.status_code == 200
        await asyncio.sleep(0.3)
        stale = await c.get(fresh.json()["next"], headers=headers)
        assert stale.status_code == 410 and stale.json()["error"] == "cursor_expired"
        restart = await c.get("/shop/v1/customers?limit=5", headers=headers)
        assert restart.status_code == 200 and restart.json()["data"][0]["id"] == "cus_000001"
