"""Schema drift, the call log and metrics against the real farm."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest
from aam_helpers import describe, make_spec
from prometheus_client import REGISTRY

from aam import errors
from aam.mesh import DB_NAME

PATH = "/items"
DRIFTING = [
    {
        "after_calls": 2,
        "action": "rename",
        "resource": "items",
        "field": "email",
        "to": "email_address",
    },
    {
        "after_calls": 2,
        "action": "retype",
        "resource": "items",
        "field": "amount",
        "type": "string",
    },
    {"after_calls": 2, "action": "add", "resource": "items", "field": "region", "type": "country"},
]


async def _canonical(farm) -> dict[str, dict]:
    r = await farm.admin.get("/admin/records/svc/items", params={"tenant": "acme", "limit": 100})
    r.raise_for_status()
    return {rec["id"]: rec for rec in r.json()["data"]}


@pytest.mark.parametrize("profile", ["full", "full-drift_mapping"])
async def test_drifted_records_keep_their_v1_values(farm_factory, mesh_factory, profile):
    spec = make_spec(drift_schedule=DRIFTING)
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory(profile)
        mesh.add_connector(describe(spec, "acme", farm.credentials("svc", "acme"), farm.url))
        for _ in range(3):  # drift fires after 2 calls
            await mesh.aam_get("svc:acme", PATH)
        status = await farm.status()
        assert status["services"]["svc"]["schema_version"] == 4
        records = [r async for r in mesh.paginate("svc:acme", PATH)]
        truth = await _canonical(farm)
    assert len(records) == 30
    if profile == "full":
        for rec in records:
            want = truth[rec["id"]]
            assert rec["email"] == want["email"]
            assert rec["amount"] == want["amount"] and isinstance(rec["amount"], float | int)
        stats = mesh.connector("svc:acme").stats()
        actions = sorted(e.action for e in mesh.connector("svc:acme").drift_log)
        assert actions == ["mapped", "retyped"]
        assert stats.drift_events == 2
    else:
        assert all("email" not in r and isinstance(r["amount"], str) for r in records)


async def test_a_removed_field_raises_schema_drift_unless_not_required(farm_factory, mesh_factory):
    drop = [{"after_calls": 1, "action": "remove", "resource": "items", "field": "amount"}]
    spec = make_spec(drift_schedule=drop)
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory()
        mesh.add_connector(describe(spec, "acme", farm.credentials("svc", "acme"), farm.url))
        await mesh.aam_get("svc:acme", PATH)
        with pytest.raises(errors.SchemaDrift):
            await mesh.aam_get("svc:acme", PATH)
        page = await mesh.aam_get("svc:acme", PATH, require=["id", "name"])
        assert page["data"] and all("amount" not in r for r in page["data"])
        await mesh.flush()
    db = sqlite3.connect(mesh.store.path)
    rows = db.execute("SELECT field, action FROM drift_events").fetchall()
    db.close()
    assert ("amount", "refused") in rows


async def test_every_attempt_is_in_the_call_log_without_secrets(farm_factory, mesh_factory):
    spec = make_spec(error_profile={"server_error_rate": 0.3})
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory()
        creds = farm.credentials("svc", "acme")
        conn = mesh.add_connector(describe(spec, "acme", creds, farm.url))
        for i in range(10):
            with contextlib.suppress(errors.AamError):  # 30% 5xx: a call may fail for good
                await mesh.aam_get("svc:acme", PATH)
            with contextlib.suppress(errors.AamError):
                await mesh.aam_post("svc:acme", PATH, {"name": f"w{i}"}, operation_id=f"w{i}")
        await mesh.flush()
    attempts = conn.stats().attempts
    path = mesh.store.path
    db = sqlite3.connect(path)
    rows = db.execute(
        "SELECT connector_id, tenant_id, method, path, http_status, error_class, retries, "
        "idempotency_key, latency FROM call_log"
    ).fetchall()
    db.close()
    assert len(rows) == attempts
    assert {r[0] for r in rows} == {"svc:acme"} and {r[1] for r in rows} == {"acme"}
    assert any(r[5] == "server_error" and r[4] in (500, 502, 503) for r in rows)
    assert any(r[6] > 0 for r in rows)  # retries recorded
    assert all(r[7].startswith("op-") for r in rows if r[2] == "POST")
    assert all(r[8] >= 0 for r in rows)
    raw = b"".join(p.read_bytes() for p in path.parent.glob(DB_NAME + "*"))
    assert creds.api_key is not None and creds.api_key.encode() not in raw


async def test_metrics_exist_at_zero_and_count_calls(farm_factory, mesh_factory):
    spec = make_spec(id="metricsvc", base_path="/mx")
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory()
        mesh.add_connector(
            describe(spec, "globex", farm.credentials("metricsvc", "globex"), farm.url)
        )
        labels = {"connector": "metricsvc:globex", "service": "metricsvc"}

        def value(name: str, **extra: str) -> float | None:
            return REGISTRY.get_sample_value(name, {**labels, **extra})

        assert value("aam_calls_total", outcome="rate_limit") == 0
        assert value("aam_attempts_total", result="timeout") == 0
        assert value("aam_circuit_state") == 0
        assert value("aam_dlq_depth") == 0
        assert value("aam_drift_events_total", action="refused") == 0
        assert value("aam_connector_info", tenant="globex") == 1
        for _ in range(3):
            await mesh.aam_get("metricsvc:globex", "/items")
        assert value("aam_calls_total", outcome="success") == 3
        assert value("aam_attempts_total", result="2xx") == 3
        assert value("aam_call_duration_seconds_count") == 3
        assert value("aam_adaptive_rate_rps") == pytest.approx(5000 * 0.98)
    text = "".join(
        f"{s.labels}" for m in REGISTRY.collect() if m.name.startswith("aam_") for s in m.samples
    )
    assert farm.running.credentials["metricsvc"]["globex"]["api_key"] not in text


async def test_naive_profile_runs_without_any_defence(farm_factory, mesh_factory):
    spec = make_spec(
        auth={"type": "oauth2_client_credentials", "rotate_token_every_calls": 5},
        error_profile={"server_error_rate": 0.2},
    )
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory("naive")
        conn = mesh.add_connector(describe(spec, "acme", farm.credentials("svc", "acme"), farm.url))
        outcomes: dict[str, int] = {}
        for i in range(20):
            try:
                await mesh.aam_post("svc:acme", PATH, {"name": f"n{i}"}, operation_id=f"n{i}")
                outcomes["ok"] = outcomes.get("ok", 0) + 1
            except errors.AamError as exc:
                outcomes[exc.error_class] = outcomes.get(exc.error_class, 0) + 1
        writes = (await farm.ledger("svc"))["writes"]
        counts = await farm.tenant_status("svc", "acme")
    stats = conn.stats()
    assert outcomes.get("auth_expired", 0) >= 10  # token never refreshed
    assert counts["tokens_issued"] == 1
    assert stats.retries == 0 and stats.current_rate == 0.0
    assert all(w["idempotency_key"] is None for w in writes)
    assert await mesh.dlq.list() == []


async def test_token_requests_are_in_the_call_log_without_the_secret(farm_factory, mesh_factory):
    spec = make_spec(auth={"type": "oauth2_client_credentials", "rotate_token_every_calls": 3})
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory()
        creds = farm.credentials("svc", "acme")
        mesh.add_connector(describe(spec, "acme", creds, farm.url))
        for _ in range(7):
            await mesh.aam_get("svc:acme", PATH)
        await mesh.flush()
    db = sqlite3.connect(mesh.store.path)
    token_rows = db.execute(
        "SELECT http_status FROM call_log WHERE path = '/oauth2/token'"
    ).fetchall()
    db.close()
    assert token_rows == [(200,), (200,), (200,)]  # one per 3 calls
    raw = b"".join(p.read_bytes() for p in mesh.store.path.parent.glob(DB_NAME + "*"))
    assert creds.client_secret is not None and creds.client_secret.encode() not in raw
