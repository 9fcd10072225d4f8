"""The token endpoint's own rate limit and faults: off by default, on in hell."""

from __future__ import annotations

from collections import Counter

import httpx
from farm_helpers import admin_headers, make_spec

from farm.server import RunningFarm, running_farm


async def _grab(c: httpx.AsyncClient, farm: RunningFarm, n: int) -> list[httpx.Response]:
    creds = farm.credentials["shop"]["acme"]
    form = {"grant_type": "client_credentials", "client_id": creds["client_id"],
            "client_secret": creds["client_secret"]}  # fmt: skip
    return [await c.post("/oauth2/token", data=form) for _ in range(n)]


async def test_off_by_default_a_refresh_storm_always_gets_tokens() -> None:
    async with running_farm([make_spec()]) as farm, httpx.AsyncClient(base_url=farm.url) as c:
        for level in ("calm", "storm"):
            await c.post("/admin/chaos", json={"level": level}, headers=admin_headers(farm))
            assert {r.status_code for r in await _grab(c, farm, 30)} == {200}


async def test_in_hell_a_refresh_storm_is_rate_limited_and_sometimes_fails() -> None:
    async with (
        running_farm([make_spec()], seed=3) as farm,
        httpx.AsyncClient(base_url=farm.url) as c,
    ):
        await c.post("/admin/chaos", json={"level": "hell"}, headers=admin_headers(farm))
        responses = await _grab(c, farm, 40)
        statuses = Counter(r.status_code for r in responses)
        assert statuses[429] >= 30 and statuses[200] >= 2, statuses
        limited = next(r for r in responses if r.status_code == 429)
        assert (
            limited.json()["error"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1
        )
        assert limited.headers["cache-control"] == "no-store"
        ledger = (await c.get("/admin/ledger", headers=admin_headers(farm))).json()
        faults = ledger["faults"]["shop"]["acme"]
        assert faults["token_rate_limited"] == statuses[429]
        assert faults.get("token_error", 0) == statuses[503]
        status = (await c.get("/admin/status", headers=admin_headers(farm))).json()
        assert status["services"]["shop"]["tenants"]["acme"]["tokens_issued"] == statuses[200]


async def test_a_spec_sets_its_own_token_limits_and_503s() -> None:
    auth = {"type": "oauth2_client_credentials",
            "token_endpoint": {"max_rps": 1000, "burst": 1000, "error_rate": 0.5}}  # fmt: skip
    async with (
        running_farm([make_spec(auth=auth)], seed=1) as farm,
        httpx.AsyncClient(base_url=farm.url) as c,
    ):
        statuses = Counter(r.status_code for r in await _grab(c, farm, 40))
        assert set(statuses) == {200, 503} and 10 <= statuses[503] <= 30, statuses
