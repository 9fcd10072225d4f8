"""Token bucket per (service, tenant): burst, steady rate, 429 with Retry-After and RateLimit."""

from __future__ import annotations

import math

import httpx
from farm_helpers import admin_headers, auth_headers, make_spec
from hypothesis import given, settings
from hypothesis import strategies as st

from farm.ratelimit import TokenBucket
from farm.server import running_farm


def test_bucket_allows_a_burst_then_the_steady_rate() -> None:
    bucket = TokenBucket(capacity=5, rate=2.0, now=0.0)
    burst = [bucket.acquire(0.0).allowed for _ in range(7)]
    assert burst == [True] * 5 + [False] * 2
    # Over the next 10 s at 10 attempts per second, exactly rate * 10 = 20 get through.
    allowed = sum(bucket.acquire(i / 10).allowed for i in range(1, 101))
    assert allowed == 20


def test_refused_acquire_says_when_to_retry() -> None:
    bucket = TokenBucket(capacity=1, rate=0.25, now=0.0)
    assert bucket.acquire(0.0).allowed
    refused = bucket.acquire(0.0)
    assert not refused.allowed and refused.retry_after == 4 and refused.remaining == 0
    assert not bucket.acquire(3.9).allowed
    assert bucket.acquire(4.0).allowed


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(1, 50),
    rate=st.floats(0.1, 100),
    gaps=st.lists(st.floats(0, 2), min_size=1, max_size=200),
)
def test_bucket_never_admits_more_than_capacity_plus_refill(
    capacity: int, rate: float, gaps: list[float]
) -> None:
    bucket = TokenBucket(capacity, rate, now=0.0)
    now, admitted = 0.0, 0
    for gap in gaps:
        now += gap
        decision = bucket.acquire(now)
        admitted += decision.allowed
        assert 0 <= decision.remaining <= capacity
        assert decision.allowed or decision.retry_after >= 1
    assert admitted <= capacity + math.floor(rate * now + 1e-9)


@settings(max_examples=100, deadline=None)
@given(capacity=st.integers(1, 30), rate=st.floats(0.5, 50), factor=st.sampled_from([0.2, 0.5, 1]))
def test_reshaping_never_leaves_more_tokens_than_capacity(
    capacity: int, rate: float, factor: float
) -> None:
    bucket = TokenBucket(capacity, rate, now=0.0)
    bucket.reshape(max(1, round(capacity * factor)), rate * factor, now=0.0)
    admitted = sum(bucket.acquire(0.0).allowed for _ in range(capacity + 5))
    assert admitted == max(1, round(capacity * factor))


async def test_429_carries_retry_after_and_ratelimit_headers() -> None:
    spec = make_spec(rate_limit={"max_rps": 0.5, "burst": 3})
    async with running_farm([spec]) as farm, httpx.AsyncClient(base_url=farm.url) as client:
        headers = await auth_headers(client, farm, "shop", "acme")
        responses = [await client.get("/shop/v1/customers", headers=headers) for _ in range(4)]
        assert [r.status_code for r in responses] == [200, 200, 200, 429]
        ok, refused = responses[0], responses[3]
        # IETF draft style (the default): a quota per window, and what is left.
        assert ok.headers["ratelimit-policy"] == '"default";q=1;w=2'
        remaining, reset = ok.headers["ratelimit"].split(";")[1:]
        assert remaining == "r=2" and int(reset.removeprefix("t=")) >= 1
        assert not any(h.startswith("x-ratelimit") for h in ok.headers)
        assert "rps=" not in str(ok.headers)
        assert refused.json()["error"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["ratelimit"].startswith('"default";r=0;')
        # Another tenant has its own bucket.
        other = await auth_headers(client, farm, "shop", "globex")
        assert (await client.get("/shop/v1/customers", headers=other)).status_code == 200
        status = (await client.get("/admin/status", headers=admin_headers(farm))).json()
        assert status["services"]["shop"]["tenants"]["acme"]["429"] == 1


async def test_chaos_storm_halves_the_bucket_and_hell_cuts_it_to_a_fifth() -> None:
    spec = make_spec(rate_limit={"max_rps": 40, "burst": 10})
    async with running_farm([spec]) as farm, httpx.AsyncClient(base_url=farm.url) as client:
        headers = await auth_headers(client, farm, "shop", "acme")
        for level, limit, rps in (("storm", "5", "20"), ("hell", "2", "8"), ("calm", "10", "40")):
            set_level = await client.post(
                "/admin/chaos", json={"level": level}, headers=admin_headers(farm)
            )
            assert set_level.status_code == 200
            seen = set()
            for _ in range(10):  # chaos may fault a request; any answer carries the headers
                try:
                    response = await client.get("/shop/v1/customers", headers=headers)
                except httpx.TransportError:
                    continue
                if "ratelimit-policy" in response.headers:
                    seen.add(response.headers["ratelimit-policy"])
                    break
            assert seen == {f'"default";q={rps};w=1'}, (level, limit)


async def _answers(style: str, n: int) -> list[httpx.Response]:
    spec = make_spec(rate_limit={"max_rps": 2, "burst": 3}, rate_limit_headers=style)
    async with running_farm([spec]) as farm, httpx.AsyncClient(base_url=farm.url) as client:
        headers = await auth_headers(client, farm, "shop", "acme")
        return [await client.get("/shop/v1/customers", headers=headers) for _ in range(n)]


async def test_github_style_sends_x_ratelimit_headers_with_an_epoch_reset() -> None:
    import time

    responses = await _answers("github", 4)
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    ok, refused = responses[0], responses[3]
    assert ok.headers["x-ratelimit-limit"] == "3"
    assert ok.headers["x-ratelimit-remaining"] == "2"
    assert ok.headers["x-ratelimit-used"] == "1"
    assert time.time() - 5 < int(ok.headers["x-ratelimit-reset"]) < time.time() + 5
    assert not any(h.startswith("ratelimit") for h in ok.headers)
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert int(refused.headers["retry-after"]) >= 1


async def test_retry_after_style_says_nothing_until_the_429() -> None:
    responses = await _answers("retry_after", 4)
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    for r in responses:
        assert not any("ratelimit" in h for h in r.headers)
    assert int(responses[3].headers["retry-after"]) >= 1


async def test_style_none_sends_not_even_retry_after() -> None:
    responses = await _answers("none", 4)
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    for r in responses:
        assert not any("ratelimit" in h or h == "retry-after" for h in r.headers)
    assert responses[3].json()["error"] == "rate_limited"


def test_a_fractional_rate_is_a_whole_quota_per_window() -> None:
    from farm.ratelimit_headers import quota_window

    assert quota_window(50) == (50, 1)
    assert quota_window(0.5) == (1, 2)
    assert quota_window(2.5) == (5, 2)
    assert quota_window(1 / 3) == (20, 60)


def test_the_preseeded_services_use_every_header_style() -> None:
    from farm.loader import DEFAULT_CONFIG_DIR, load_specs

    styles = {s.rate_limit_headers.value for s in load_specs([DEFAULT_CONFIG_DIR])}
    assert styles == {"ietf", "github", "retry_after", "none"}
