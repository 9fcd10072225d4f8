"""Idempotent writes and the DLQ against the real farm; the farm's ledger is the judge."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from pathlib import Path

import pytest
from aam_helpers import describe, error_classes, make_spec, run_concurrently
from prometheus_client import REGISTRY

from aam import RatePolicy, errors
from aam.backoff import Backoff

PATH = "/items"
REPO_ROOT = Path(__file__).resolve().parents[2]
REPLAY_CHILD = Path(__file__).with_name("replay_child.py")
FAST = RatePolicy(5000, 5000, max_attempts=12, backoff=Backoff(0.001, 0.01))
ONE_ATTEMPT = RatePolicy(5000, 5000, max_attempts=1)
TWO = RatePolicy(5000, 5000, max_attempts=2, backoff=Backoff(0.001, 0.01))


def flaky_writes(supported: bool, rate: float = 0.2):
    """Writes that often commit and then lose the response (drop or stall)."""
    return make_spec(
        error_profile={"server_error_rate": rate, "commit_then_fail_share": 1.0},
        network_profile={
            "dns_flakiness": rate / 2,
            "timeout_probability": rate / 2,
            "timeout_delay_seconds": 0.5,
        },
        idempotency={"supported": supported},
    )


async def _depth_gauge() -> float | None:
    for _ in range(20):  # the gauge is refreshed by a task reading the DLQ table
        await asyncio.sleep(0.01)
    return REGISTRY.get_sample_value("aam_dlq_depth", {"connector": "svc:acme", "service": "svc"})


async def _writes(farm, mesh, n: int, profile_note: str = ""):
    results = await run_concurrently(
        n,
        lambda i: mesh.aam_post(
            "svc:acme", PATH, {"name": f"n{i}", "amount": i}, operation_id=f"op{i}"
        ),
    )
    ledger = await farm.ledger("svc")
    return results, ledger["writes"]


@pytest.mark.parametrize("supported", [True, False], ids=["server-keys", "lookup-field"])
async def test_ambiguous_write_failures_never_duplicate(farm_factory, mesh_factory, supported):
    spec = flaky_writes(supported)
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory()
        mesh.add_connector(
            describe(spec, "acme", farm.credentials("svc", "acme"), farm.url),
            rate_policy=FAST,
            network=__import__("aam").NetworkProfile(read_timeout=0.2),
        )
        results, writes = await _writes(farm, mesh, 40)
        faults = (await farm.ledger("svc"))["faults"]
    assert error_classes(results) == {}
    names = Counter(w["lookup_value"] if not supported else w["idempotency_key"] for w in writes)
    assert len(writes) == 40, (len(writes), faults)
    assert max(names.values()) == 1
    assert sum(1 for w in writes if w["outcome"] == "commit_then_fail") >= 3  # real ambiguity
    assert {r["name"] for r in results} == {f"n{i}" for i in range(40)}


async def test_without_idempotency_ambiguous_writes_are_not_retried(farm_factory, mesh_factory):
    spec = flaky_writes(False)
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory("full-idempotency")
        mesh.add_connector(
            describe(spec, "acme", farm.credentials("svc", "acme"), farm.url),
            rate_policy=FAST,
            network=__import__("aam").NetworkProfile(read_timeout=0.2),
        )
        results, writes = await _writes(farm, mesh, 40)
    failed = error_classes(results)
    assert sum(failed.values()) >= 5  # surfaced instead of risking a duplicate
    assert all(w["idempotency_key"] is None for w in writes)  # no key sent
    assert len(await mesh.dlq.list()) == sum(failed.values())


async def test_repeated_key_returns_the_stored_result_without_calling_the_api(
    farm_factory, mesh_factory
):
    spec = make_spec(idempotency={"supported": True})
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory()
        mesh.add_connector(describe(spec, "acme", farm.credentials("svc", "acme"), farm.url))
        first = await mesh.aam_post("svc:acme", PATH, {"name": "a"}, operation_id="op-1")
        calls = (await farm.tenant_status("svc", "acme"))["calls"]
        again = await mesh.aam_post("svc:acme", PATH, {"name": "a"}, operation_id="op-1")
        assert again == first
        assert (await farm.tenant_status("svc", "acme"))["calls"] == calls
        with pytest.raises(errors.ClientError) as info:
            await mesh.aam_post("svc:acme", PATH, {"name": "b"}, operation_id="op-1")
        assert info.value.reason == "idempotency_key_reuse"
        # Concurrent repeats of one key: one effect.
        same = await asyncio.gather(
            *(mesh.aam_post("svc:acme", PATH, {"name": "c"}, "key-c") for _ in range(10))
        )
        writes = (await farm.ledger("svc"))["writes"]
    assert len({r["id"] for r in same}) == 1
    assert len(writes) == 2
    assert writes[0]["idempotency_key"].startswith("op-")


@pytest.mark.parametrize("profile", ["full", "full-dead_letter"])
async def test_failed_writes_go_to_the_dlq_and_replay_once(farm_factory, mesh_factory, profile):
    spec = make_spec(error_profile={"server_error_rate": 1.0, "commit_then_fail_share": 0.0})
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory(profile)
        mesh.add_connector(
            describe(spec, "acme", farm.credentials("svc", "acme"), farm.url), rate_policy=TWO
        )
        results = await run_concurrently(
            10, lambda i: mesh.aam_post("svc:acme", PATH, {"name": f"d{i}"}, operation_id=f"d{i}")
        )
        assert error_classes(results) == {"server_error": 10}
        entries = await mesh.dlq.list()
        if profile != "full":
            assert entries == []
            return
        assert len(entries) == 10
        assert {e.error_class for e in entries} == {"server_error"}
        assert all(e.attempts >= 1 and e.idempotency_key for e in entries)
        assert mesh.connector("svc:acme").stats().dlq_entries == 10
        assert await _depth_gauge() == 10
        await farm.chaos("off")
        # The outage may have left the breaker open: a refused replay keeps the entry pending
        # (nothing lost); once the breaker lets a probe out, the rest goes through.
        breaker = mesh.connector("svc:acme").breaker
        replayed = failed = 0
        for _ in range(4):
            report = await mesh.dlq.replay()
            replayed += report.replayed
            failed += report.failed
            if report.skipped == 0:
                break
            await asyncio.sleep(min(breaker.retry_in(), 16.0) + 0.01)
        writes = (await farm.ledger("svc"))["writes"]
    assert (replayed, failed) == (10, 0)
    assert await _depth_gauge() == 0
    assert sorted(w["lookup_value"] for w in writes) == sorted(e.idempotency_key for e in entries)
    assert {e.status for e in await mesh.dlq.list()} == {"replayed"}


@pytest.mark.parametrize("supported", [True, False], ids=["server-keys", "lookup-field"])
async def test_replay_interrupted_mid_way_loses_nothing_and_sends_nothing_twice(
    farm_factory, mesh_factory, tmp_path, supported
):
    spec = make_spec(
        error_profile={"server_error_rate": 1.0, "commit_then_fail_share": 0.0},
        idempotency={"supported": supported},
    )
    async with farm_factory([spec]) as farm:
        creds = farm.credentials("svc", "acme")
        # The breaker would rightly refuse the replay right after an outage: test the DLQ alone.
        mesh = await mesh_factory("full-circuit_breaker", name="state")
        mesh.add_connector(describe(spec, "acme", creds, farm.url), rate_policy=ONE_ATTEMPT)
        await run_concurrently(
            8, lambda i: mesh.aam_post("svc:acme", PATH, {"name": f"r{i}"}, operation_id=f"r{i}")
        )
        await farm.chaos("off")
        # Interrupt the replay while a request is on the wire (after the commit, before the
        # answer is recorded): the worst moment for a crash.
        conn = mesh.connector("svc:acme")
        original = conn.transport.request
        sent = 0

        async def stall_after_third(method, url, **kw):
            nonlocal sent
            response = await original(method, url, **kw)
            if method == "POST":
                sent += 1
                if sent == 3:
                    await asyncio.sleep(30)  # never returns: the task is abandoned here
            return response

        conn.transport.request = stall_after_third  # type: ignore[method-assign]
        task = asyncio.ensure_future(mesh.dlq.replay())
        for _ in range(500):
            if sent >= 3:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await mesh.close()
        # "Restart": a new Mesh over the same state directory.
        reopened = await mesh_factory("full-circuit_breaker", name="state")
        reopened.add_connector(describe(spec, "acme", creds, farm.url), rate_policy=ONE_ATTEMPT)
        waiting = [e for e in await reopened.dlq.list() if e.status != "replayed"]
        assert len(waiting) == 6  # two replayed, one interrupted mid-send, five untouched
        report = await reopened.dlq.replay()
        writes = (await farm.ledger("svc"))["writes"]
    assert report.replayed == 6
    entries = await reopened.dlq.list()
    assert {e.status for e in entries} == {"replayed"}
    field = "idempotency_key" if supported else "lookup_value"
    committed = Counter(w[field] for w in writes)
    assert sorted(committed) == sorted(e.idempotency_key for e in entries)
    assert max(committed.values()) == 1


async def test_killed_replay_process_loses_nothing_and_sends_nothing_twice(
    farm_factory, mesh_factory, tmp_path
):
    """A real crash: a child process replaying the DLQ is SIGKILLed right after a commit."""
    spec = make_spec(error_profile={"server_error_rate": 1.0, "commit_then_fail_share": 0.0})
    async with farm_factory([spec]) as farm:
        creds = farm.running.credentials["svc"]["acme"]
        mesh = await mesh_factory("full-circuit_breaker", name="state")
        mesh.add_connector(
            describe(spec, "acme", farm.credentials("svc", "acme"), farm.url),
            rate_policy=ONE_ATTEMPT,
        )
        await run_concurrently(
            6, lambda i: mesh.aam_post("svc:acme", PATH, {"name": f"k{i}"}, operation_id=f"k{i}")
        )
        await mesh.close()
        await farm.chaos("off")
        (tmp_path / "spec.json").write_text(spec.model_dump_json(by_alias=True))
        (tmp_path / "creds.json").write_text(json.dumps(creds))
        os_env = {"PYTHONPATH": str(REPO_ROOT)}
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            str(REPLAY_CHILD),
            str(tmp_path / "state"),
            farm.url,
            str(tmp_path / "spec.json"),
            str(tmp_path / "creds.json"),
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, **os_env},
        )
        assert child.stdout is not None
        lines: list[str] = []
        try:
            for _ in range(20):
                line = (await asyncio.wait_for(child.stdout.readline(), 30)).decode().strip()
                if not line:
                    break
                lines.append(line)
                if line == "STALL":
                    break
        finally:
            child.kill()  # SIGKILL: no cleanup, no flush, mid-replay
            await child.wait()
        assert lines[-1] == "STALL", lines
        reopened = await mesh_factory("full-circuit_breaker", name="state")
        reopened.add_connector(
            describe(spec, "acme", farm.credentials("svc", "acme"), farm.url),
            rate_policy=ONE_ATTEMPT,
        )
        before = {e.status for e in await reopened.dlq.list()}
        report = await reopened.dlq.replay()
        writes = (await farm.ledger("svc"))["writes"]
    assert "replaying" in before  # the crash left one entry mid-replay on disk
    entries = await reopened.dlq.list()
    assert len(entries) == 6 and {e.status for e in entries} == {"replayed"}
    assert report.replayed == 4  # two finished before the crash; four (one interrupted) now
    committed = Counter(w["lookup_value"] for w in writes)
    assert sorted(committed) == sorted(e.idempotency_key for e in entries)
    assert max(committed.values()) == 1
