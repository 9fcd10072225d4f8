"""Faults as a client really observes them: 5xx statuses, dropped connections, stalls."""

from __future__ import annotations

import logging
from collections import Counter

import httpx
import pytest
from farm_helpers import admin_headers, auth_headers, make_spec, outcome

from farm.chaos import LEVELS, ChaosLevel, FaultDice, FaultKind, fault_rates
from farm.server import running_farm

QUIET = {"preset": "none"}


def _spec(errors: dict[str, object] | None = None, network: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    return make_spec(error_profile=errors or QUIET, network_profile=network or {})


async def test_server_errors_are_5xx_statuses_with_no_effect() -> None:
    spec = _spec({"preset": "none", "server_error_rate": 1.0, "commit_then_fail_share": 0.0})
    async with running_farm([spec]) as farm, httpx.AsyncClient(base_url=farm.url) as client:
        headers = await auth_headers(client, farm, "shop", "acme")
        seen = set()
        for i in range(30):
            response = await client.post(
                "/shop/v1/invoices", json={"external_id": f"x{i}"}, headers=headers
            )
            assert response.status_code in (500, 502, 503)
            assert response.json()["error"] == "injected_fault"
            if response.status_code == 503:
                assert response.headers["retry-after"] == "1"
            seen.add(response.status_code)
        assert seen == {500, 502, 503}
        ledger = (await client.get("/admin/ledger", headers=admin_headers(farm))).json()
        assert ledger["writes"] == []
        assert ledger["faults"]["shop"]["acme"]["server_error"] == 30


async def test_rate_limit_spike_is_a_429_beyond_the_bucket() -> None:
    spec = _spec({"preset": "none", "rate_limit_spike_rate": 1.0})
    async with running_farm([spec]) as farm, httpx.AsyncClient(base_url=farm.url) as client:
        response = await client.get(
            "/shop/v1/customers", headers=await auth_headers(client, farm, "shop", "acme")
        )
        assert response.status_code == 429 and response.headers["retry-after"] == "1"
        remaining = response.headers["ratelimit"].split(";r=")[1].split(";")[0]
        assert int(remaining) > 0  # the bucket was not empty


async def test_network_fault_is_a_dropped_connection_without_a_logged_traceback() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(level=logging.DEBUG)
    logger = logging.getLogger("uvicorn.error")
    spec = _spec(network={"connection_drop_probability": 1.0})
    async with running_farm([spec]) as farm, httpx.AsyncClient(base_url=farm.url) as client:
        logger.addHandler(handler)  # after uvicorn configured its loggers (that drops handlers)
        try:
            headers = await auth_headers(client, farm, "shop", "acme")
            import aiohttp

            seen: Counter[str] = Counter()
            for _ in range(12):
                before = await _faults(client, farm)
                # A cut mid-body: a FIN after half the body (httpx: the body is short) or a RST
                # (httpx: a read error). Either way no complete answer.
                with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)) as caught:
                    await client.get("/shop/v1/customers", headers=headers)
                kind = _new_kind(before, await _faults(client, farm))
                expected = httpx.RemoteProtocolError if kind == "network" else httpx.ReadError
                assert kind in ("network", "reset_mid_body") and caught.type is expected
                seen[kind] += 1
                # aiohttp sees the same cut as a payload error or a reset.
                async with aiohttp.ClientSession() as session:
                    with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ClientOSError)):
                        async with session.get(
                            farm.url + "/shop/v1/customers", headers=headers
                        ) as r:
                            await r.read()
            assert seen["network"] and seen["reset_mid_body"], seen
            status = (await client.get("/admin/status", headers=admin_headers(farm))).json()
            assert status["services"]["shop"]["tenants"]["acme"]["network_faults"] == 24
        finally:
            logger.removeHandler(handler)
    assert not [r for r in records if r.levelno >= logging.ERROR], [r.getMessage() for r in records]


async def _faults(client: httpx.AsyncClient, farm) -> dict[str, int]:  # type: ignore[no-untyped-def]
    ledger = (await client.get("/admin/ledger", headers=admin_headers(farm))).json()
    return dict(ledger["faults"].get("shop", {}).get("acme", {}))


def _new_kind(before: dict[str, int], after: dict[str, int]) -> str:
    grown = [k for k, n in after.items() if n > before.get(k, 0)]
    assert len(grown) == 1, (before, after)
    return grown[0]


async def test_timeout_holds_the_response_past_the_clients_read_timeout() -> None:
    spec = _spec(network={"timeout_probability": 1.0, "timeout_delay_seconds": 1.5})
    async with running_farm([spec]) as farm, httpx.AsyncClient(base_url=farm.url) as client:
        headers = await auth_headers(client, farm, "shop", "acme")
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/shop/v1/customers", headers=headers, timeout=0.3)
        # A write that timed out before its commit leaves no effect.
        with pytest.raises(httpx.ReadTimeout):
            await client.post(
                "/shop/v1/invoices", json={"external_id": "slow"}, headers=headers, timeout=0.3
            )
        ledger = (await client.get("/admin/ledger", headers=admin_headers(farm))).json()
        assert ledger["writes"] == [] and ledger["faults"]["shop"]["acme"]["timeout"] == 2


async def test_a_patient_client_gets_the_held_response() -> None:
    spec = _spec(network={"timeout_probability": 1.0, "timeout_delay_seconds": 0.2})
    async with running_farm([spec]) as farm, httpx.AsyncClient(base_url=farm.url) as client:
        response = await client.get(
            "/shop/v1/customers",
            headers=await auth_headers(client, farm, "shop", "acme"),
            timeout=5,
        )
        assert response.status_code == 200 and len(response.json()["data"]) == 10
        status = (await client.get("/admin/status", headers=admin_headers(farm))).json()
        assert status["services"]["shop"]["tenants"]["acme"]["timeouts"] == 1


async def test_commit_then_fail_commits_the_write_but_the_client_sees_a_drop() -> None:
    spec = _spec(
        {"preset": "none", "server_error_rate": 1.0, "commit_then_fail_share": 1.0},
        {"dns_flakiness": 0.0},
    )
    async with running_farm([spec]) as farm, httpx.AsyncClient(base_url=farm.url) as client:
        headers = await auth_headers(client, farm, "shop", "acme")
        body = {"customer_id": "cus_000001", "amount": 10.0, "external_id": "ctf-1"}
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/shop/v1/invoices", json=body, headers=headers)
        ledger = (await client.get("/admin/ledger", headers=admin_headers(farm))).json()
        assert [(w["lookup_value"], w["outcome"]) for w in ledger["writes"]] == [
            ("ctf-1", "commit_then_fail")
        ]
        assert ledger["faults"]["shop"]["acme"]["commit_then_fail"] == 1
        # The record is really there: a lookup (reads are faulted too, so allow a few tries).
        farm.app.farm.set_chaos(ChaosLevel.off)
        found = await client.get("/shop/v1/invoices?external_id=ctf-1", headers=headers)
        assert [r["external_id"] for r in found.json()["data"]] == ["ctf-1"]


async def test_commit_then_fail_share_zero_never_commits_a_faulted_write() -> None:
    spec = _spec(
        {"preset": "none", "commit_then_fail_share": 0.0}, {"connection_drop_probability": 1.0}
    )
    async with running_farm([spec]) as farm, httpx.AsyncClient(base_url=farm.url) as client:
        headers = await auth_headers(client, farm, "shop", "acme")
        for i in range(5):
            kind = await outcome(
                client, "POST", "/shop/v1/invoices", json={"external_id": f"n{i}"}, headers=headers
            )
            assert kind == "network"
        ledger = (await client.get("/admin/ledger", headers=admin_headers(farm))).json()
        faults = ledger["faults"]["shop"]["acme"]
        assert ledger["writes"] == []
        assert faults.get("network", 0) + faults.get("reset_mid_body", 0) == 5


@pytest.mark.parametrize("level", list(ChaosLevel))
def test_fault_rates_of_each_chaos_level_match_the_table(level: ChaosLevel) -> None:
    spec = _spec()
    dice = FaultDice(seed=1, service="shop", tenant="acme")
    rates = fault_rates(spec, "acme", level)
    kinds = Counter(dice.roll(rates, is_write=False).kind for _ in range(20_000))
    effect = LEVELS[level]
    for kind, expected in (
        (FaultKind.server_error, effect.extra_server_error),
        ((FaultKind.network, FaultKind.reset_mid_body), effect.extra_network),
        (FaultKind.refused, effect.extra_refused),
        (FaultKind.timeout, effect.extra_timeout),
        (FaultKind.slow_body, effect.extra_slow_body),
    ):
        names = kind if isinstance(kind, tuple) else (kind,)
        share = sum(kinds[k] for k in names) / 20_000
        assert abs(share - expected) <= max(0.004, expected * 0.15), (level, kind, share)


def test_off_ignores_the_spec_profile_and_calm_uses_it() -> None:
    spec = _spec({"preset": "flaky_5xx"}, {"dns_flakiness": 0.1})
    assert fault_rates(spec, "acme", ChaosLevel.off).quiet
    calm = fault_rates(spec, "acme", ChaosLevel.calm)
    # DNS/TLS trouble means the request never reached the server: a reset before it is read.
    assert calm.server_error == 0.05 and calm.refused == 0.1 and calm.network == 0.0


@pytest.mark.slow
async def test_chaos_levels_change_observed_error_rates_over_the_wire() -> None:
    spec = make_spec(
        rate_limit={"max_rps": 100_000, "burst": 100_000},
        error_profile=QUIET,
        network_profile={"timeout_delay_seconds": 0.01},
    )
    observed: dict[str, float] = {}
    async with running_farm([spec], seed=3) as farm, httpx.AsyncClient(base_url=farm.url) as client:
        headers = await auth_headers(client, farm, "shop", "acme")
        for level in ("calm", "mild", "storm", "hell"):
            await client.post("/admin/chaos", json={"level": level}, headers=admin_headers(farm))
            kinds = Counter(
                [
                    await outcome(client, "GET", "/shop/v1/customers", headers=headers)
                    for _ in range(300)
                ]
            )
            observed[level] = 1 - kinds["200"] / 300
    assert observed["calm"] == 0
    assert 0.01 <= observed["mild"] <= 0.10
    assert 0.09 <= observed["storm"] <= 0.27
    assert 0.30 <= observed["hell"] <= 0.56
    assert observed["mild"] < observed["storm"] < observed["hell"]


async def _fault_sequence(seed: int) -> list[str]:
    spec = make_spec(
        rate_limit={"max_rps": 100_000, "burst": 100_000},
        network_profile={"timeout_delay_seconds": 0.01},
    )
    async with (
        running_farm([spec], seed=seed) as farm,
        httpx.AsyncClient(base_url=farm.url) as client,
    ):
        headers = await auth_headers(client, farm, "shop", "acme")
        await client.post("/admin/chaos", json={"level": "hell"}, headers=admin_headers(farm))
        return [
            await outcome(client, "GET", "/shop/v1/customers", headers=headers) for _ in range(80)
        ]


async def test_same_seed_same_fault_sequence() -> None:
    first, again, other = (
        await _fault_sequence(11),
        await _fault_sequence(11),
        await _fault_sequence(12),
    )
    assert first == again
    assert first != other
    assert {"200", "network"} <= set(first) and any(c.startswith("5") for c in first)


def test_same_seed_same_dice_rolls_and_tenants_roll_independently() -> None:
    rates = fault_rates(_spec(), "acme", ChaosLevel.hell)
    a = [FaultDice(5, "shop", "acme").roll(rates, False) for _ in range(1)]
    rolls = [FaultDice(5, "shop", "acme") for _ in range(2)]
    assert [rolls[0].roll(rates, True) for _ in range(200)] == [
        rolls[1].roll(rates, True) for _ in range(200)
    ]
    other = FaultDice(5, "shop", "globex")
    assert [other.roll(rates, False) for _ in range(200)] != [
        FaultDice(5, "shop", "acme").roll(rates, False) for _ in range(200)
    ]
    assert a  # the first roll exists and is a decision


def test_lognormal_latency_has_the_spec_median_and_p99() -> None:
    from farm.latency import LatencyModel
    from farm.spec import Latency

    model = LatencyModel.from_spec(Latency(p50_ms=40, p99_ms=400, base_ms=5))
    assert model.quantile(0.5) == pytest.approx(0.045)
    assert model.quantile(0.99) == pytest.approx(0.405)
    assert model.scaled(2.0).quantile(0.5) == pytest.approx(0.090)
    capped = LatencyModel.from_spec(Latency(p50_ms=40, p99_ms=400, max_ms=100))
    assert capped.quantile(0.999999) == pytest.approx(0.1)
    # The dice draw latencies from it: the empirical median and p99 of many rolls match.
    spec = _spec(network={"latency": {"p50_ms": 40, "p99_ms": 400}})
    rates = fault_rates(spec, "acme", ChaosLevel.calm)
    dice = FaultDice(seed=3, service="shop", tenant="acme")
    draws = sorted(dice.roll(rates, is_write=False).latency for _ in range(20_000))
    assert draws[10_000] == pytest.approx(0.040, rel=0.05)
    assert draws[19_800] == pytest.approx(0.400, rel=0.15)


def test_latency_needs_both_percentiles_in_order() -> None:
    from pydantic import ValidationError

    from farm.spec import Latency

    with pytest.raises(ValidationError, match="set both p50_ms and p99_ms"):
        Latency(p50_ms=10)
    with pytest.raises(ValidationError, match="must be >= p50_ms"):
        Latency(p50_ms=100, p99_ms=10)


def test_write_faults_after_the_commit_split_between_gateways_and_drops() -> None:
    spec = _spec({"preset": "none", "server_error_rate": 1.0, "commit_then_fail_share": 0.5,
                  "after_commit_gateway_share": 0.5})  # fmt: skip
    rates = fault_rates(spec, "acme", ChaosLevel.calm)
    dice = FaultDice(seed=9, service="shop", tenant="acme")
    rolls = [dice.roll(rates, is_write=True) for _ in range(8_000)]
    before = [r for r in rolls if not r.after_commit]
    gateway = [r for r in rolls if r.kind is FaultKind.commit_then_5xx]
    drops = [r for r in rolls if r.after_commit and r.kind is FaultKind.network]
    assert all(r.kind is FaultKind.server_error for r in before)
    assert {r.status for r in gateway} == {502, 504}
    for part in (before, gateway + drops):
        assert abs(len(part) / 8_000 - 0.5) < 0.03
    assert abs(len(gateway) / 8_000 - 0.25) < 0.03
    # Reads never fail after a commit.
    assert not any(dice.roll(rates, is_write=False).after_commit for _ in range(1_000))
