"""The harsher faults as a real client observes them, through the farm's socket front.

Each test makes the farm inject one kind for sure, sends real requests over loopback with httpx
and aiohttp (and the reference AAM's own transport, which classifies failures), and checks the
farm's ground truth: was anything committed?
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import httpx
import pytest

from aam.transport import AiohttpTransport, NetworkProfile, TransportFailure
from farm.server import RunningFarm, running_farm
from farm.spec import ServiceSpec

SPEC: dict[str, Any] = {
    "id": "shop",
    "base_path": "/shop/v1",
    "auth": {"type": "api_key"},
    "rate_limit": {"max_rps": 5000, "burst": 5000},
    "error_profile": {"preset": "none"},
    "resources": [
        {
            "name": "invoices",
            "records": 20,
            "lookup_field": "external_id",
            "endpoints": [
                {"method": "GET", "path": "/invoices", "paginated": True},
                {"method": "POST", "path": "/invoices"},
            ],
        }
    ],
    "schema": {"fields": {"invoices": {"id": "id", "amount": "amount", "external_id": "string"}}},
    "tenants": [{"id": "acme"}],
}


def spec(
    errors: dict[str, Any] | None = None, network: dict[str, Any] | None = None
) -> ServiceSpec:
    raw = dict(SPEC)
    raw["error_profile"] = {"preset": "none", **(errors or {})}
    raw["network_profile"] = network or {}
    return ServiceSpec.model_validate(raw)


def key_headers(farm: RunningFarm) -> dict[str, str]:
    creds = farm.credentials["shop"]["acme"]
    return {creds["api_key_header"]: creds["api_key"]}


async def ledger(farm: RunningFarm) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=farm.url) as admin:
        response = await admin.get(
            "/admin/ledger", headers={"Authorization": f"Bearer {farm.admin_token}"}
        )
        result: dict[str, Any] = response.json()
        return result


async def test_a_refused_connection_is_a_network_error_that_certainly_did_not_commit() -> None:
    async with running_farm([spec(network={"dns_flakiness": 1.0})]) as farm:
        headers = key_headers(farm)
        # httpx: the connection is reset before a single byte of an answer.
        async with httpx.AsyncClient(base_url=farm.url) as client:
            with pytest.raises(httpx.ReadError):
                await client.post("/shop/v1/invoices", json={"external_id": "a"}, headers=headers)
        # aiohttp: the same reset, no status line ever seen.
        async with aiohttp.ClientSession() as session:
            with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
                async with session.post(
                    farm.url + "/shop/v1/invoices", json={"external_id": "b"}, headers=headers
                ) as response:
                    await response.read()
        # The reference AAM's transport classifies it as a network error.
        transport = AiohttpTransport(farm.url, NetworkProfile())
        try:
            with pytest.raises(TransportFailure) as caught:
                await transport.request(
                    "POST", "/shop/v1/invoices", headers=headers, content=b'{"external_id": "c"}'
                )
        finally:
            await transport.aclose()
        assert caught.value.error_class == "network_error"
        truth = await ledger(farm)
        assert truth["writes"] == []  # the ground truth: nothing happened
        assert truth["faults"]["shop"]["acme"] == {"refused": 3}


async def test_a_post_commit_502_or_504_leaves_a_committed_write() -> None:
    errors = {"server_error_rate": 1.0, "commit_then_fail_share": 1.0,
              "after_commit_gateway_share": 1.0}  # fmt: skip
    async with running_farm([spec(errors)]) as farm:
        statuses = []
        async with httpx.AsyncClient(base_url=farm.url) as client:
            for i in range(12):
                response = await client.post(
                    "/shop/v1/invoices", json={"external_id": f"g{i}"}, headers=key_headers(farm)
                )
                statuses.append(response.status_code)
                expected = "bad_gateway" if response.status_code == 502 else "gateway_timeout"
                assert response.json()["error"] == expected
        assert set(statuses) == {502, 504}
        truth = await ledger(farm)
        # Every one of them committed, although the client saw a 5xx: a blind re-send duplicates.
        assert [(w["lookup_value"], w["outcome"]) for w in truth["writes"]] == [
            (f"g{i}", "commit_then_fail") for i in range(12)
        ]
        assert truth["faults"]["shop"]["acme"] == {"commit_then_5xx": 12}


async def test_a_5xx_before_the_handler_commits_nothing_and_reads_never_fail_after_commit() -> None:
    errors = {"server_error_rate": 1.0, "commit_then_fail_share": 0.0}
    async with running_farm([spec(errors)]) as farm, httpx.AsyncClient(base_url=farm.url) as c:
        for i in range(6):
            response = await c.post(
                "/shop/v1/invoices", json={"external_id": f"p{i}"}, headers=key_headers(farm)
            )
            assert response.status_code in (500, 502, 503)
        truth = await ledger(farm)
        assert truth["writes"] == [] and truth["faults"]["shop"]["acme"] == {"server_error": 6}


async def test_a_slow_body_arrives_whole_to_a_patient_client_and_times_out_a_deadline() -> None:
    network = {"slow_body_probability": 1.0, "slow_body_seconds": 1.0}
    async with running_farm([spec(network=network)]) as farm:
        headers = key_headers(farm)
        async with httpx.AsyncClient(base_url=farm.url) as client:
            # Every gap is shorter than the per-read timeout, so a per-read timeout never fires:
            # the answer is complete, only slow.
            started = time.monotonic()
            response = await client.get(
                "/shop/v1/invoices", headers=headers, timeout=httpx.Timeout(5, read=0.5)
            )
            assert time.monotonic() - started >= 1.0  # the server spaced the pieces so
            assert response.status_code == 200 and len(response.json()["data"]) == 20
            # A client with a deadline for the whole answer gives up after the headers came.
            seen_status = []

            async def read_all() -> None:
                async with client.stream("GET", "/shop/v1/invoices", headers=headers) as stream:
                    seen_status.append(stream.status_code)
                    await stream.aread()

            with pytest.raises(TimeoutError):
                await asyncio.wait_for(read_all(), timeout=0.3)
            assert seen_status == [200]
            # A write answered slowly is committed even if its client gave up during the body.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(
                    client.post("/shop/v1/invoices", json={"external_id": "s"}, headers=headers),
                    timeout=0.3,
                )
        await asyncio.sleep(0.5)  # the farm notices the client left at its next piece
        truth = await ledger(farm)
        assert [(w["lookup_value"], w["outcome"]) for w in truth["writes"]] == [
            ("s", "commit_then_fail")
        ]
        assert truth["faults"]["shop"]["acme"]["slow_body"] == 3


async def test_latency_follows_the_lognormal_tail_of_the_spec() -> None:
    latency = {"p50_ms": 20, "p99_ms": 200}
    async with running_farm([spec(network={"latency": latency})]) as farm:
        headers = key_headers(farm)
        durations = []
        async with httpx.AsyncClient(base_url=farm.url) as client:
            for _ in range(40):
                started = time.monotonic()
                response = await client.get("/shop/v1/invoices", headers=headers)
                durations.append(time.monotonic() - started)
                assert response.status_code == 200
        durations.sort()
        # Lower bounds only (the machine may add time, never remove it): the median request
        # waited about p50, and the slowest well past it.
        assert durations[len(durations) // 2] >= 0.010
        assert durations[-1] >= 0.040
