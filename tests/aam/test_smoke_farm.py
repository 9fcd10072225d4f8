from __future__ import annotations

import asyncio

import pytest
from aam_helpers import describe, make_spec

from aam import NetworkProfile


@pytest.mark.parametrize("client", ["aiohttp", "httpx"])
async def test_get_post_paginate_against_the_real_farm(farm_factory, mesh_factory, client):
    spec = make_spec(auth={"type": "oauth2_client_credentials"})
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory()
        conn = mesh.add_connector(
            describe(spec, "acme", farm.credentials("svc", "acme"), farm.url),
            network=NetworkProfile(http_client=client),
        )
        assert conn.id == "svc:acme"
        page = await mesh.aam_get("svc:acme", "/items", {"limit": 5})
        assert len(page["data"]) == 5 and page["next"]
        one = await mesh.aam_get("svc:acme", f"/items/{page['data'][0]['id']}")
        assert one == page["data"][0]
        records = [r async for r in mesh.paginate("svc:acme", "/items", {"limit": 7})]
        assert len(records) == 30 and len({r["id"] for r in records}) == 30
        created = await mesh.aam_post("svc:acme", "/items", {"name": "x", "amount": 1.5})
        assert created["name"] == "x" and created["id"]
        stats = conn.stats()
    assert stats.calls == stats.successes == 2 + 5 + 1  # page, item, 5 pages of 7, write
    assert stats.token_refreshes == 1
    assert stats.latency_p50 is not None and stats.latency_p99 is not None


async def test_wire_latency_and_limiter_wait_are_kept_apart_from_call_latency(
    farm_factory, mesh_factory
):
    # A tight bucket: 12 concurrent calls cannot all go at once, so some wait in the limiter.
    spec = make_spec(rate_limit={"max_rps": 40, "burst": 2})
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory()
        conn = mesh.add_connector(describe(spec, "acme", farm.credentials("svc", "acme"), farm.url))
        before = conn.stats()
        assert before.attempt_latency_p50 is None and before.limiter_wait_seconds == 0
        results = await asyncio.gather(
            *(mesh.aam_get("svc:acme", "/items", {"limit": 1}) for _ in range(12))
        )
        counts = await farm.tenant_status("svc", "acme")
        stats = conn.stats()
    assert all(r["data"] for r in results)
    # One sample per successful HTTP attempt, none for refused ones.
    assert len(conn._stats.attempt_latencies) == counts["2xx"] == stats.attempts - counts["429"]
    assert stats.attempt_latency_p50 is not None and stats.attempt_latency_p99 is not None
    assert stats.attempt_latency_p50 <= stats.attempt_latency_p99
    # p99 of 12 samples is the slowest: a call lasts at least as long as its last attempt.
    assert stats.latency_p99 is not None and stats.latency_p99 >= stats.attempt_latency_p99
    assert stats.limiter_wait_seconds > 0


def test_the_wire_latency_sample_is_bounded() -> None:
    from aam.stats import LATENCY_SAMPLE, StatsRecorder

    rec = StatsRecorder()
    assert rec.attempt_percentile(0.5) is None
    for i in range(LATENCY_SAMPLE + 10):
        rec.attempt_latencies.append(float(i))
    assert len(rec.attempt_latencies) == LATENCY_SAMPLE
    assert rec.attempt_percentile(0.0) == 10.0  # the oldest ten fell out
    assert rec.attempt_percentile(1.0) == float(LATENCY_SAMPLE + 9)
    assert rec.percentile(0.5) is None  # call latencies are a separate sample
