"""Each defence against the real farm on loopback, and what changes when it is switched off."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aam_helpers import describe, error_classes, make_spec, run_concurrently

from aam import NetworkProfile, RatePolicy, TenantCredentials, errors
from aam.backoff import Backoff
from aam.circuit import CircuitState

PATH = "/items"


def oauth(**auth: Any) -> dict[str, Any]:
    return {"type": "oauth2_client_credentials", **auth}


# -- rate adaptation ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "profile", ["full", pytest.param("full-rate_adaptation", marks=pytest.mark.slow)]
)
async def test_rate_adaptation_keeps_429s_rare(farm_factory, mesh_factory, profile):
    spec = make_spec(rate_limit={"max_rps": 60, "burst": 10})
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory(profile)
        mesh.add_connector(describe(spec, "acme", farm.credentials("svc", "acme"), farm.url))
        results = await run_concurrently(90, lambda i: mesh.aam_get("svc:acme", PATH))
        counts = await farm.tenant_status("svc", "acme")
    stats = mesh.connector("svc:acme").stats()
    if profile == "full":
        assert error_classes(results) == {}
        assert counts["429"] <= 6, counts  # a loaded CI machine may stall the loop briefly
    else:
        # Without the limiter 32 callers burst past the bucket: many 429s (retried or surfaced).
        assert counts["429"] >= 20, counts
    assert stats.rate_limited == counts["429"]


@pytest.mark.slow
async def test_retry_after_is_honoured_and_other_tenants_are_not_slowed(farm_factory, mesh_factory):
    spec = make_spec(
        rate_limit={"max_rps": 5000, "burst": 5000},
        tenants=[{"id": "acme", "rate_limit": {"max_rps": 4, "burst": 2}}, {"id": "globex"}],
    )
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory()
        # Start acme too fast on purpose (it believes 50 rps) so the server must push back.
        slow = mesh.add_connector(
            describe(spec, "acme", farm.credentials("svc", "acme"), farm.url),
            rate_policy=RatePolicy(max_rps=50, burst=20, max_attempts=6),
        )
        mesh.add_connector(describe(spec, "globex", farm.credentials("svc", "globex"), farm.url))
        sends: list[float] = []
        throttled: list[tuple[float, float]] = []
        original = slow.transport.request

        async def spy(method, url, **kw):
            sends.append(time.monotonic())
            response = await original(method, url, **kw)
            if response.status_code == 429:
                throttled.append((time.monotonic(), float(response.headers["retry-after"])))
            return response

        slow.transport.request = spy  # type: ignore[method-assign]
        import asyncio

        acme = asyncio.ensure_future(
            run_concurrently(12, lambda i: mesh.aam_get("svc:acme", PATH), concurrency=8)
        )
        await asyncio.sleep(0.05)
        globex = await run_concurrently(200, lambda i: mesh.aam_get("svc:globex", PATH))
        globex_done = time.monotonic()
        acme_results = await acme
    assert throttled, "the server never pushed back: the test proves nothing"
    assert error_classes(globex) == {}
    assert not acme.done() or globex_done <= max(sends)  # globex finished while acme waited
    for at, retry_after in throttled:
        # No acme request left between a 429 and the end of its Retry-After.
        early = [s for s in sends if at < s < at + retry_after - 0.01]
        assert early == [], (at, retry_after, early)
    assert error_classes(acme_results).get("rate_limit", 0) <= 2


# -- token lifecycle ---------------------------------------------------------------------------
@pytest.mark.parametrize("profile", ["full", "full-token_refresh"])
async def test_token_rotation_is_invisible_to_callers(farm_factory, mesh_factory, profile):
    spec = make_spec(auth=oauth(rotate_token_every_calls=10))
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory(profile)
        mesh.add_connector(describe(spec, "acme", farm.credentials("svc", "acme"), farm.url))
        results = await run_concurrently(120, lambda i: mesh.aam_get("svc:acme", PATH))
        counts = await farm.tenant_status("svc", "acme")
    classes = error_classes(results)
    if profile == "full":
        assert classes == {}
        # About one token request per rotation (12 rotations in 120 calls), not one per caller
        # (32 callers would ask 32 times per rotation without single flight).
        assert counts["tokens_issued"] <= 18, counts
        assert mesh.connector("svc:acme").stats().token_refreshes == counts["tokens_issued"]
    else:
        assert classes.get("auth_expired", 0) >= 100
        assert counts["tokens_issued"] == 1


async def test_the_rotation_is_learnt_from_401s_and_then_costs_no_401(farm_factory, mesh_factory):
    # The descriptor says nothing about rotation (tokens live 3600 s); the farm retires each
    # token after 50 calls. Only the first rotation may cost 401s (32 callers in flight).
    spec = make_spec(auth=oauth(rotate_token_every_calls=50))
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory()
        descriptor = describe(spec, "acme", farm.credentials("svc", "acme"), farm.url)
        assert "rotate" not in descriptor.model_dump_json()
        mesh.add_connector(descriptor)
        results = await run_concurrently(3000, lambda i: mesh.aam_get("svc:acme", PATH))
        counts = await farm.tenant_status("svc", "acme")
    assert error_classes(results) == {}
    lifecycle = mesh.connector("svc:acme").lifecycle
    assert lifecycle is not None and lifecycle.max_uses == 50  # learnt, never told
    rotations = (counts["calls"] - counts["401"]) / 50
    assert rotations >= 59
    assert counts["401"] <= 2 * rotations, counts  # the bound: <= 2 per rotation
    assert counts["401"] <= 40, counts  # in fact: the first rotation only (32 in flight)
    assert counts["tokens_issued"] <= 1.2 * rotations + 1, counts


@pytest.mark.slow
async def test_token_is_renewed_before_it_expires(farm_factory, mesh_factory):
    spec = make_spec(auth=oauth(token_ttl_seconds=1))
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory()
        mesh.add_connector(describe(spec, "acme", farm.credentials("svc", "acme"), farm.url))
        import asyncio

        for _ in range(30):
            await mesh.aam_get("svc:acme", PATH)
            await asyncio.sleep(0.1)
        counts = await farm.tenant_status("svc", "acme")
    assert counts["tokens_issued"] >= 3
    assert counts["401"] == 0, counts  # renewed ahead of expiry, never refused


async def test_invalid_credentials_fail_fast_and_are_never_retried(farm_factory, mesh_factory):
    spec = make_spec(auth=oauth())
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory()
        good = farm.credentials("svc", "acme")
        bad = TenantCredentials(
            client_id=good.client_id, client_secret="x" * 24, token_url=good.token_url
        )
        mesh.add_connector(describe(spec, "acme", bad, farm.url))
        for _ in range(3):
            with pytest.raises(errors.InvalidCredentials):
                await mesh.aam_get("svc:acme", PATH)
        counts = await farm.tenant_status("svc", "acme")
    assert counts["calls"] == 0
    assert mesh.connector("svc:acme").stats().token_refreshes == 1


async def test_wrong_api_key_is_invalid_creds_after_one_attempt(farm_factory, mesh_factory):
    spec = make_spec()
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory()
        mesh.add_connector(describe(spec, "acme", TenantCredentials(api_key="z" * 32), farm.url))
        with pytest.raises(errors.InvalidCredentials) as info:
            await mesh.aam_get("svc:acme", PATH)
    assert info.value.attempts == 1


# -- retries, budget, circuit ------------------------------------------------------------------
@pytest.mark.parametrize("profile", ["full", "full-retries"])
async def test_gets_retry_through_flaky_5xx(farm_factory, mesh_factory, profile):
    spec = make_spec(error_profile={"server_error_rate": 0.3})
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory(profile)
        mesh.add_connector(
            describe(spec, "acme", farm.credentials("svc", "acme"), farm.url),
            rate_policy=RatePolicy(5000, 5000, max_attempts=10, backoff=Backoff(0.001, 0.01)),
        )
        results = await run_concurrently(100, lambda i: mesh.aam_get("svc:acme", PATH))
    classes = error_classes(results)
    stats = mesh.connector("svc:acme").stats()
    if profile == "full":
        assert classes == {}
        assert stats.retries >= 15
    else:
        assert classes.get("server_error", 0) >= 15
        assert stats.retries == 0


@pytest.mark.parametrize("client", ["aiohttp", "httpx"])
async def test_network_drops_and_timeouts_are_classified_right(farm_factory, mesh_factory, client):
    drops = make_spec(id="drops", base_path="/drops", network_profile={"dns_flakiness": 1.0})
    stalls = make_spec(
        id="stalls",
        base_path="/stalls",
        network_profile={"timeout_probability": 1.0, "timeout_delay_seconds": 1.0},
    )
    async with farm_factory([drops, stalls]) as farm:
        mesh = await mesh_factory("full-retries")
        fast = NetworkProfile(read_timeout=0.2, http_client=client)
        mesh.add_connector(
            describe(drops, "acme", farm.credentials("drops", "acme"), farm.url),
            network=NetworkProfile(http_client=client),
        )
        mesh.add_connector(
            describe(stalls, "acme", farm.credentials("stalls", "acme"), farm.url), network=fast
        )
        with pytest.raises(errors.NetworkError):
            await mesh.aam_get("drops:acme", "/items")
        with pytest.raises(errors.CallTimeout):
            await mesh.aam_get("stalls:acme", "/items")


async def test_retry_budget_stops_an_outage_from_multiplying_load(farm_factory, mesh_factory):
    spec = make_spec(error_profile={"server_error_rate": 1.0})
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory("full-circuit_breaker")
        policy = RatePolicy(
            5000, 5000, max_attempts=4, backoff=Backoff(0.001, 0.002), retry_budget_capacity=10
        )
        mesh.add_connector(
            describe(spec, "acme", farm.credentials("svc", "acme"), farm.url), rate_policy=policy
        )
        results = await run_concurrently(60, lambda i: mesh.aam_get("svc:acme", PATH))
        counts = await farm.tenant_status("svc", "acme")
    assert error_classes(results) == {"server_error": 60}
    # 60 first attempts + at most the budget's 10 retries, not 60 x 4 = 240.
    assert counts["calls"] <= 70, counts


@pytest.mark.parametrize("profile", ["full", "full-circuit_breaker"])
async def test_circuit_breaker_fails_fast_in_an_outage(farm_factory, mesh_factory, profile):
    spec = make_spec(error_profile={"server_error_rate": 1.0})
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory(profile + "-retries" if profile != "full" else "full-retries")
        mesh.add_connector(describe(spec, "acme", farm.credentials("svc", "acme"), farm.url))
        results = await run_concurrently(80, lambda i: mesh.aam_get("svc:acme", PATH), 4)
        counts = await farm.tenant_status("svc", "acme")
    conn = mesh.connector("svc:acme")
    assert error_classes(results) == {"server_error": 80}
    if profile == "full":
        assert conn.breaker.state is CircuitState.open
        assert counts["calls"] <= 50, counts  # opened after 40, then failed fast
        assert any(r.reason == "circuit_open" for r in results)
    else:
        assert counts["calls"] == 80
