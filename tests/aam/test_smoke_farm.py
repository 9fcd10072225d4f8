from __future__ import annotations

import pytest
from aam_helpers import make_spec

from aam import NetworkProfile


@pytest.mark.parametrize("client", ["aiohttp", "httpx"])
async def test_get_post_paginate_against_the_real_farm(farm_factory, mesh_factory, client):
    spec = make_spec(auth={"type": "oauth2_client_credentials"})
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory()
        conn = mesh.add_connector(
            spec,
            "acme",
            farm.credentials("svc", "acme"),
            base_url=farm.url,
            network=NetworkProfile(http_client=client),
        )
        assert conn.id == "svc:acme"
        page = await mesh.aam_get("svc:acme", "/svc/v1/items", {"limit": 5})
        assert len(page["data"]) == 5 and page["next"]
        one = await mesh.aam_get("svc:acme", f"/svc/v1/items/{page['data'][0]['id']}")
        assert one == page["data"][0]
        records = [r async for r in mesh.paginate("svc:acme", "/svc/v1/items", {"limit": 7})]
        assert len(records) == 30 and len({r["id"] for r in records}) == 30
        created = await mesh.aam_post("svc:acme", "/svc/v1/items", {"name": "x", "amount": 1.5})
        assert created["name"] == "x" and created["id"]
        stats = conn.stats()
    assert stats.calls == stats.successes == 2 + 5 + 1  # page, item, 5 pages of 7, write
    assert stats.token_refreshes == 1
    assert stats.latency_p50 is not None and stats.latency_p99 is not None
