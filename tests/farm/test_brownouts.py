"""Correlated faults: brownout windows and outages, laid out from the seed like drift."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from farm_helpers import admin_headers, auth_headers, make_spec, outcome

from farm.brownout import Weather
from farm.chaos import LEVEL_BROWNOUTS, ChaosLevel, weather_for
from farm.server import running_farm
from farm.spec import BrownoutProfile, OutageProfile

BROWNOUTS = BrownoutProfile(
    every_seconds=10, duration_seconds=2, extra_error_rate=0.5, latency_factor=3, tenant_share=0.5
)


def _windows(seed: int) -> list[tuple[str, str | None, float, float]]:
    weather = Weather(make_spec(), seed, started=100.0)
    weather.configure(BROWNOUTS, OutageProfile(every_seconds=30, duration_seconds=1))
    return [(e["kind"], e["tenant"], e["start_s"], e["end_s"]) for e in weather.events(400.0)]


def test_windows_come_from_the_seed_and_cover_a_service_or_one_tenant() -> None:
    first, again, other = _windows(1), _windows(1), _windows(2)
    assert first == again and first != other
    kinds = Counter(kind for kind, *_ in first)
    assert 15 <= kinds["brownout"] <= 35 and 4 <= kinds["outage"] <= 12
    scopes = {tenant for kind, tenant, *_ in first if kind == "brownout"}
    assert None in scopes and scopes & {"acme", "globex"}  # whole service and single tenants
    for kind, _, start, end in first:
        length = end - start
        assert (1.0 <= length <= 3.0) if kind == "brownout" else (0.5 <= length <= 1.5)
    starts = [start for *_, start, _ in first]
    assert starts == sorted(starts)


def test_a_window_covers_its_tenant_only_and_an_outage_wins() -> None:
    weather = Weather(make_spec(), 3, started=0.0)
    weather.configure(BROWNOUTS, None)
    events = weather.events(1000.0)
    single = next(e for e in events if e["tenant"] is not None)
    middle = (single["start_s"] + single["end_s"]) / 2
    other = "globex" if single["tenant"] == "acme" else "acme"
    window = weather.at(middle, single["tenant"])
    assert window is not None and window.kind == "brownout" and window.extra_error == 0.5
    assert weather.at(middle, other) is None
    everyone = next(e for e in events if e["tenant"] is None)
    assert weather.at(everyone["start_s"] + 0.01, other) is not None
    assert weather.at(everyone["start_s"] - 0.01, other) is None


def test_levels_bring_brownouts_only_when_the_spec_sets_none() -> None:
    spec = make_spec()
    assert weather_for(spec, ChaosLevel.calm) == (None, None)
    assert weather_for(spec, ChaosLevel.storm) == (LEVEL_BROWNOUTS[ChaosLevel.storm], None)
    brownouts, outages = weather_for(spec, ChaosLevel.hell)
    assert brownouts is not None and outages is not None
    own = make_spec(brownouts=BROWNOUTS.model_dump())
    assert weather_for(own, ChaosLevel.calm) == (BROWNOUTS, None)
    assert weather_for(own, ChaosLevel.off) == (None, None)


async def test_an_outage_refuses_every_request_and_a_brownout_raises_errors() -> None:
    spec = make_spec(
        outages={"every_seconds": 0.05, "duration_seconds": 100},
        tenants=[{"id": "acme"}],
    )
    async with running_farm([spec], seed=5) as farm, httpx.AsyncClient(base_url=farm.url) as c:
        headers = await auth_headers(c, farm, "shop", "acme")
        await asyncio.sleep(0.1)  # the first outage has begun (it starts within 0.075 s)
        seen = [await outcome(c, "GET", "/shop/v1/customers", headers=headers) for _ in range(5)]
        assert seen == ["network"] * 5
        ledger = (await c.get("/admin/ledger", headers=admin_headers(farm))).json()
        assert ledger["faults"]["shop"]["acme"] == {"outage": 5}
        assert [e["kind"] for e in ledger["correlated_events"]] == ["outage"]
    spec = make_spec(
        brownouts={"every_seconds": 0.05, "duration_seconds": 100, "extra_error_rate": 0.6,
                   "latency_factor": 2, "tenant_share": 0},
        tenants=[{"id": "acme"}],
    )  # fmt: skip
    async with running_farm([spec], seed=5) as farm, httpx.AsyncClient(base_url=farm.url) as c:
        headers = await auth_headers(c, farm, "shop", "acme")
        await asyncio.sleep(0.1)
        seen = [await outcome(c, "GET", "/shop/v1/customers", headers=headers) for _ in range(60)]
        errors = sum(s.startswith("5") for s in seen)
        assert 20 <= errors <= 52, Counter(seen)  # 60 % of 60 seeded draws


async def test_a_scheduled_outage_of_the_write_path_refuses_writes_only_in_its_window() -> None:
    spec = make_spec(tenants=[{"id": "acme"}, {"id": "globex"}])
    async with running_farm([spec], seed=5) as farm, httpx.AsyncClient(base_url=farm.url) as c:
        admin = admin_headers(farm)
        body = {"service": "shop", "tenant": "acme", "at_seconds": 0, "duration_seconds": 600,
                "methods": ["POST"]}  # fmt: skip
        assert (await c.post("/admin/outages", json=body)).status_code == 401
        wrong = {"Authorization": "Bearer not-the-token"}
        assert (await c.post("/admin/outages", json=body, headers=wrong)).status_code == 403
        answer = await c.post("/admin/outages", json=body, headers=admin)
        assert answer.status_code == 200, answer.text
        window = answer.json()
        assert window["kind"] == "outage" and window["scheduled"] is True
        assert window["methods"] == ["POST"] and window["tenant"] == "acme"
        acme = await auth_headers(c, farm, "shop", "acme")
        globex = await auth_headers(c, farm, "shop", "globex")
        invoice = {"customer_id": "cus_1", "amount": 1.5, "due_date": "2026-01-01"}
        for i in range(3):
            sent = {**invoice, "external_id": f"x-{i}"}
            assert await outcome(c, "POST", "/shop/v1/invoices", json=sent, headers=acme) == (
                "network"
            )  # refused before it was read: nothing committed
            assert await outcome(c, "GET", "/shop/v1/invoices", headers=acme) == "200"
        other = {**invoice, "external_id": "y-1"}
        assert await outcome(c, "POST", "/shop/v1/invoices", json=other, headers=globex) == "201"
        ledger = (await c.get("/admin/ledger", headers=admin)).json()
        assert ledger["faults"]["shop"]["acme"] == {"outage": 3}
        assert [w["lookup_value"] for w in ledger["writes"]] == ["y-1"]
        assert [(e["kind"], e["scheduled"]) for e in ledger["correlated_events"]] == [
            ("outage", True)
        ]
        # A reset drops it: the write path is back.
        assert (await c.post("/admin/reset", json={}, headers=admin)).status_code == 200
        acme = await auth_headers(c, farm, "shop", "acme")
        sent = {**invoice, "external_id": "x-after"}
        assert await outcome(c, "POST", "/shop/v1/invoices", json=sent, headers=acme) == "201"


async def test_a_scheduled_outage_starts_at_its_time_and_bad_requests_say_why() -> None:
    spec = make_spec(tenants=[{"id": "acme"}])
    async with running_farm([spec], seed=5) as farm, httpx.AsyncClient(base_url=farm.url) as c:
        admin = admin_headers(farm)
        later = {"service": "shop", "at_seconds": 3600, "duration_seconds": 1}
        assert (await c.post("/admin/outages", json=later, headers=admin)).status_code == 200
        headers = await auth_headers(c, farm, "shop", "acme")
        assert await outcome(c, "GET", "/shop/v1/customers", headers=headers) == "200"
        ledger = (await c.get("/admin/ledger", headers=admin)).json()
        assert ledger["correlated_events"] == []  # not begun yet
        bad = [
            ({"service": "nope", "at_seconds": 0, "duration_seconds": 1}, 404, "nope"),
            ({"service": "shop", "tenant": "initech", "at_seconds": 0, "duration_seconds": 1},
             404, "initech"),
            ({"service": "shop", "at_seconds": -1, "duration_seconds": 1}, 422, "at_seconds"),
            ({"service": "shop", "at_seconds": 0, "duration_seconds": 0}, 422, "duration_seconds"),
            ({"service": "shop", "at_seconds": 0, "duration_seconds": 1, "methods": ["BREW"]},
             422, "methods"),
            ({"service": "shop", "at_seconds": 0, "duration_seconds": 1, "why": 1}, 422, "why"),
        ]  # fmt: skip
        for body, status, named in bad:
            answer = await c.post("/admin/outages", json=body, headers=admin)
            assert answer.status_code == status, (body, answer.text)
            assert named in answer.text, answer.text
