"""Malformed requests get a 4xx with a reason, never a 500 or a traceback."""

from __future__ import annotations

import httpx
import pytest
from farm_helpers import auth_headers, make_spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from farm.app import create_app
from farm.server import RunningFarm


@pytest.mark.parametrize(
    "query",
    ["limit=abc", "limit=0", "limit=21", "limit=-1", "cursor=!!!", "cursor=bm9wZQ", "page=2",
     "limit=1e3"],
)  # fmt: skip
async def test_bad_cursor_pagination_values_are_400(
    farm: RunningFarm, client: httpx.AsyncClient, query: str
) -> None:
    headers = await auth_headers(client, farm, "shop", "acme")
    response = await client.get(f"/shop/v1/customers?{query}", headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request" and response.json()["detail"]


@pytest.mark.parametrize("query", ["page=0", "page=x", "per_page=500", "cursor=abc"])
async def test_bad_page_pagination_values_are_400(
    farm: RunningFarm, client: httpx.AsyncClient, query: str
) -> None:
    headers = await auth_headers(client, farm, "shop", "acme")
    response = await client.get(f"/shop/v1/invoices?{query}", headers=headers)
    assert response.status_code == 400 and response.json()["detail"]


@pytest.mark.parametrize(
    ("content", "status", "error"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2]", 422, "invalid_body"),
        (b'"text"', 422, "invalid_body"),
        (b"", 422, "invalid_body"),
    ],
)
async def test_bad_write_bodies_are_4xx_with_a_reason(
    farm: RunningFarm, client: httpx.AsyncClient, content: bytes, status: int, error: str
) -> None:
    headers = {
        **await auth_headers(client, farm, "shop", "acme"),
        "content-type": "application/json",
    }
    response = await client.post("/shop/v1/invoices", content=content, headers=headers)
    assert (response.status_code, response.json()["error"]) == (status, error)


async def test_unknown_routes_wrong_methods_and_huge_bodies(
    farm: RunningFarm, client: httpx.AsyncClient
) -> None:
    headers = await auth_headers(client, farm, "shop", "acme")
    unknown = await client.get("/shop/v1/nothing-here", headers=headers)
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    wrong = await client.delete("/shop/v1/invoices", headers=headers)
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, POST"
    no_post = await client.post("/shop/v1/customers", json={}, headers=headers)
    assert no_post.status_code == 405
    huge = await client.post("/shop/v1/invoices", content=b"x" * (2 << 20), headers=headers)
    assert huge.status_code == 413
    reset = await client.post(
        "/admin/reset", content=b"{bad", headers={"Authorization": f"Bearer {farm.admin_token}"}
    )
    assert reset.status_code == 422 and reset.json()["error"] == "invalid_request"


# In-process (no socket) so hypothesis can run many examples quickly; its own service id keeps
# its counters apart from the farms other tests serve.
_app = create_app(
    [make_spec(id="prop", base_path="/prop/v1", error_profile={"preset": "none"})],
    admin_token="t" * 20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(["/prop/v1/customers", "/prop/v1/invoices", "/prop/v1/customers/x"]),
    params=st.dictionaries(
        st.sampled_from(["limit", "cursor", "page", "per_page", "external_id", "junk"]),
        st.text(max_size=12),
        max_size=4,
    ),
)
async def test_any_query_string_gets_a_json_answer_never_a_500(
    path: str, params: dict[str, str]
) -> None:
    creds = _app.farm.credentials.by_tenant[("prop", "acme")]
    token = _app.farm.tokens.issue(creds, 3600, None)
    transport = httpx.ASGITransport(app=_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://farm") as client:
        response = await client.get(
            path, params=params, headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code in (200, 400, 404, 429), response.text
    body = response.json()
    assert ("data" in body or "id" in body) if response.status_code == 200 else body["error"]
