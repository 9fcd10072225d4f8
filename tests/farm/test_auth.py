"""OAuth2 client credentials (RFC 6749 §4.4), token TTL and rotation, API keys, tenant isolation."""

from __future__ import annotations

import base64
from urllib.parse import quote_plus

import httpx
import pytest
from farm_helpers import admin_headers, get_token, make_spec

from farm.server import RunningFarm, running_farm

TOKEN = "/oauth2/token"


def _basic(client_id: str, secret: str) -> str:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


async def test_token_endpoint_accepts_body_or_basic_credentials(
    farm: RunningFarm, client: httpx.AsyncClient
) -> None:
    creds = farm.credentials["shop"]["acme"]
    in_body = await client.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
            "scope": "read write",
        },
    )
    assert in_body.status_code == 200
    body = in_body.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 60
    assert body["scope"] == "read write" and len(body["access_token"]) >= 20
    assert in_body.headers["cache-control"] == "no-store"
    basic = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": _basic(creds["client_id"], creds["client_secret"])},
    )
    assert basic.status_code == 200
    assert basic.json()["access_token"] != body["access_token"]


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        ({}, 400, "invalid_request"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": "client_credentials"}, 401, "invalid_client"),
        ({"grant_type": "client_credentials", "client_id": "nobody-at-all"}, 401, "invalid_client"),
    ],
)
async def test_token_endpoint_errors_follow_rfc_6749(
    client: httpx.AsyncClient, data: dict[str, str], status: int, error: str
) -> None:
    response = await client.post(TOKEN, data=data)
    assert response.status_code == status
    assert response.json()["error"] == error
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Basic")


async def test_wrong_secret_and_wrong_content_type_are_refused(
    farm: RunningFarm, client: httpx.AsyncClient
) -> None:
    creds = farm.credentials["shop"]["acme"]
    wrong = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials", "client_id": creds["client_id"],
              "client_secret": "x" * 30},
    )  # fmt: skip
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    as_json = await client.post(TOKEN, json={"grant_type": "client_credentials"})
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")


async def test_token_expires_after_its_ttl(farm: RunningFarm, client: httpx.AsyncClient) -> None:
    token = await get_token(client, farm, "shop", "acme")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/shop/v1/customers", headers=headers)).status_code == 200
    farm.app.farm.clock.advance(61)  # TTL is 60 s
    expired = await client.get("/shop/v1/customers", headers=headers)
    assert expired.status_code == 401
    assert expired.json() == {"error": "invalid_token", "error_description": "expired"}
    assert expired.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    fresh = await get_token(client, farm, "shop", "acme")
    ok = await client.get("/shop/v1/customers", headers={"Authorization": f"Bearer {fresh}"})
    assert ok.status_code == 200


async def test_token_is_rotated_after_n_calls_and_new_tokens_do_not_revoke_old_ones() -> None:
    spec = make_spec(auth={"type": "oauth2_client_credentials", "rotate_token_every_calls": 3})
    async with running_farm([spec]) as farm, httpx.AsyncClient(base_url=farm.url) as client:
        first = {"Authorization": f"Bearer {await get_token(client, farm, 'shop', 'acme')}"}
        second = {"Authorization": f"Bearer {await get_token(client, farm, 'shop', 'acme')}"}
        codes = [
            (await client.get("/shop/v1/customers", headers=first)).status_code for _ in range(4)
        ]
        assert codes == [200, 200, 200, 401]
        rotated = await client.get("/shop/v1/customers", headers=first)
        assert rotated.json()["error_description"] == "rotated"
        assert (await client.get("/shop/v1/customers", headers=second)).status_code == 200
        status = (await client.get("/admin/status", headers=admin_headers(farm))).json()
        acme = status["services"]["shop"]["tenants"]["acme"]
        assert acme["tokens_issued"] == 2 and acme["401"] == 2 and acme["2xx"] == 4


async def test_missing_and_unknown_credentials_are_401(client: httpx.AsyncClient) -> None:
    missing = await client.get("/shop/v1/customers")
    assert (missing.status_code, missing.json()["error_description"]) == (401, "missing")
    unknown = await client.get("/shop/v1/customers", headers={"Authorization": "Bearer nope"})
    assert (unknown.status_code, unknown.json()["error_description"]) == (401, "unknown")
    bad_key = await client.get("/keyed/customers", headers={"X-API-Key": "k" * 32})
    assert (bad_key.status_code, bad_key.json()["error_description"]) == (401, "unknown")


async def test_a_tenants_credentials_never_work_for_another_tenant(
    farm: RunningFarm, client: httpx.AsyncClient
) -> None:
    acme = {"Authorization": f"Bearer {await get_token(client, farm, 'shop', 'acme')}"}
    claimed = await client.get("/shop/v1/customers", headers={**acme, "X-Tenant-ID": "globex"})
    assert claimed.status_code == 403
    assert claimed.json()["error"] == "forbidden" and "data" not in claimed.json()
    same = await client.get("/shop/v1/customers", headers={**acme, "X-Tenant-ID": "acme"})
    assert same.status_code == 200
    # A valid credential of another service: the shop token on the API-key service, and back.
    assert (await client.get("/keyed/customers", headers=acme)).status_code == 403
    key = farm.credentials["keyed"]["globex"]["api_key"]
    assert (await client.get("/shop/v1/customers", headers={"X-API-Key": key})).status_code == 403
    own = await client.get("/keyed/customers", headers={"X-API-Key": key})
    assert own.status_code == 200
    other = await client.get("/keyed/customers", headers={"X-API-Key": key, "X-Tenant-ID": "acme"})
    assert other.status_code == 403


async def test_tenants_see_their_own_records(farm: RunningFarm, client: httpx.AsyncClient) -> None:
    pages = {}
    for tenant in ("acme", "globex"):
        headers = {"Authorization": f"Bearer {await get_token(client, farm, 'shop', tenant)}"}
        pages[tenant] = (await client.get("/shop/v1/customers", headers=headers)).json()["data"]
    assert [r["id"] for r in pages["acme"]] == [r["id"] for r in pages["globex"]]
    assert [r["email"] for r in pages["acme"]] != [r["email"] for r in pages["globex"]]
