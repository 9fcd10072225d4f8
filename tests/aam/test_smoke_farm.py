from __future__ import annotations

from aam_helpers import make_spec


async def test_get_post_paginate_against_the_real_farm(farm_factory, mesh_factory):
    spec = make_spec()
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory()
        mesh.add_connector(spec, "acme", farm.credentials("svc", "acme"), base_url=farm.url)
        page = await mesh.aam_get("svc:acme", "/svc/v1/items", {"limit": 5})
        assert len(page["data"]) == 5
        records = [r async for r in mesh.paginate("svc:acme", "/svc/v1/items")]
        assert len(records) == 30
        created = await mesh.aam_post("svc:acme", "/svc/v1/items", {"name": "x", "amount": 1.5})
        assert created["name"] == "x"
        print(created, page["data"][0])
