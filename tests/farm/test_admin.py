"""Admin surface: token required, chaos, reset, ledger, records, token and credential files."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest
from farm_helpers import admin_headers, auth_headers, make_spec

from farm.app import ADMIN_TOKEN_ENV
from farm.server import RunningFarm, running_farm

ADMIN_CALLS = [
    ("GET", "/admin/status", None),
    ("POST", "/admin/chaos", {"level": "storm"}),
    ("POST", "/admin/reset", {}),
    ("GET", "/admin/ledger", None),
    ("GET", "/admin/records/shop/customers?tenant=acme", None),
    ("GET", "/admin/credentials", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_CALLS)
async def test_admin_endpoints_refuse_requests_without_the_token(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, str] | None
) -> None:
    missing = await client.request(method, path, json=body)
    assert missing.status_code == 401 and missing.json()["error"] == "unauthorized"
    wrong = await client.request(
        method, path, json=body, headers={"Authorization": "Bearer not-the-admin-token"}
    )
    assert wrong.status_code == 403 and wrong.json()["error"] == "forbidden"
    assert "client_secret" not in wrong.text


async def test_chaos_per_service_and_for_all(farm: RunningFarm, client: httpx.AsyncClient) -> None:
    admin = admin_headers(farm)
    status = (await client.get("/admin/status", headers=admin)).json()
    assert status["chaos"] == {"level": "calm", "services": {"shop": "calm", "keyed": "calm"}}
    one = await client.post(
        "/admin/chaos", json={"level": "hell", "service": "keyed"}, headers=admin
    )
    assert one.json()["services"] == {"shop": "calm", "keyed": "hell"}
    everyone = await client.post("/admin/chaos", json={"level": "mild"}, headers=admin)
    assert everyone.json() == {"level": "mild", "services": {"shop": "mild", "keyed": "mild"}}
    bad = await client.post("/admin/chaos", json={"level": "apocalypse"}, headers=admin)
    assert bad.status_code == 422 and "level" in bad.json()["detail"]
    unknown = await client.post(
        "/admin/chaos", json={"level": "off", "service": "x"}, headers=admin
    )
    assert unknown.status_code == 404


async def test_reset_restores_the_start_but_keeps_credentials(
    farm: RunningFarm, client: httpx.AsyncClient
) -> None:
    admin = admin_headers(farm)
    headers = await auth_headers(client, farm, "shop", "acme")
    await client.post("/shop/v1/invoices", json={"external_id": "gone"}, headers=headers)
    await client.post("/admin/chaos", json={"level": "storm"}, headers=admin)
    reset = await client.post("/admin/reset", json={"seed": 99}, headers=admin)
    assert {k: v for k, v in reset.json().items() if k != "farm"} == {"status": "reset", "seed": 99}
    assert reset.json()["farm"]["epoch"] == 1
    status = (await client.get("/admin/status", headers=admin)).json()
    assert status["seed"] == 99 and status["chaos"]["level"] == "calm"
    assert status["services"]["shop"]["tenants"]["acme"]["calls"] == 0
    assert (await client.get("/admin/ledger", headers=admin)).json()["writes"] == []
    # Tokens are forgotten; credentials still work for a new one.
    assert (await client.get("/shop/v1/customers", headers=headers)).status_code == 401
    fresh = await auth_headers(client, farm, "shop", "acme")
    page = await client.get("/shop/v1/invoices?per_page=20&page=3", headers=fresh)
    assert len(page.json()["data"]) == 5  # 45 seeded records, the created one is gone


async def test_ledger_filters_by_service_and_records_are_canonical(
    farm: RunningFarm, client: httpx.AsyncClient
) -> None:
    admin = admin_headers(farm)
    for service, path in (("shop", "/shop/v1/invoices"), ("keyed", "/keyed/invoices")):
        headers = await auth_headers(client, farm, service, "acme")
        assert (await client.post(path, json={"external_id": service}, headers=headers)).is_success
    only = (await client.get("/admin/ledger?service=keyed", headers=admin)).json()
    assert [w["service"] for w in only["writes"]] == ["keyed"]
    assert len((await client.get("/admin/ledger", headers=admin)).json()["writes"]) == 2
    records = await client.get(
        "/admin/records/shop/customers", params={"tenant": "acme", "limit": 3}, headers=admin
    )
    assert records.json()["total"] == 30 and len(records.json()["data"]) == 3
    missing = await client.get("/admin/records/shop/nope?tenant=acme", headers=admin)
    assert missing.status_code == 404


async def test_generated_admin_token_and_credentials_are_files_only_the_owner_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ADMIN_TOKEN_ENV, raising=False)
    async with running_farm([make_spec()], state_dir=tmp_path) as farm:
        token_file, creds_file = tmp_path / "admin-token", tmp_path / "credentials.json"
        assert token_file.read_text().strip() == farm.admin_token
        for path in (token_file, creds_file):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        first = farm.credentials
    async with running_farm([make_spec()], state_dir=tmp_path) as again:
        assert again.credentials == first  # generated credentials survive a restart


async def test_admin_token_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ADMIN_TOKEN_ENV, "from-the-environment-0123456789")
    async with running_farm([make_spec()]) as farm, httpx.AsyncClient(base_url=farm.url) as client:
        assert farm.admin_token == "from-the-environment-0123456789"
        response = await client.get("/admin/status", headers=admin_headers(farm))
        assert response.status_code == 200


async def test_credentials_from_the_spec_win() -> None:
    spec = make_spec(
        tenants=[{"id": "acme", "client_id": "acme-client-id", "client_secret": "s" * 20}]
    )
    async with running_farm([spec]) as farm:
        assert farm.credentials["shop"]["acme"]["client_id"] == "acme-client-id"
        assert farm.credentials["shop"]["acme"]["client_secret"] == "s" * 20
