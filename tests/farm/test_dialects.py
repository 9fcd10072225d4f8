"""Provider dialects: refusals worded like the provider's, 403 for a limit, Retry-After as
seconds / a float / an HTTP date / nothing, and the offset and Link-header pagination styles."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx
import pytest
from farm_helpers import admin_headers, auth_headers, make_spec

from farm.server import running_farm

SPIKE = {"preset": "none", "rate_limit_spike_rate": 1.0}


async def _refusals(dialect: dict[str, Any]) -> tuple[httpx.Response, httpx.Response]:
    spec = make_spec(dialect=dialect, error_profile=SPIKE, tenants=[{"id": "acme"}])
    async with running_farm([spec]) as farm, httpx.AsyncClient(base_url=farm.url) as c:
        limited = await c.get(
            "/shop/v1/customers", headers=await auth_headers(c, farm, "shop", "acme")
        )
        unauthorized = await c.get("/shop/v1/customers", headers={"Authorization": "Bearer nope"})
        return limited, unauthorized


@pytest.mark.parametrize(
    ("errors", "limit_body", "auth_body"),
    [
        ("default", {"error": "rate_limited"}, {"error": "invalid_token"}),
        ("github", {"message": "You have exceeded a secondary rate limit"},
         {"message": "Bad credentials"}),
        ("stripe", {"error": {"type": "rate_limit_error", "code": "rate_limited"}},
         {"error": {"type": "authentication_error", "code": "invalid_token"}}),
        ("shopify", {"errors": "rate limit spike"}, {"errors": "unknown"}),
        ("hubspot", {"status": "error", "category": "RATE_LIMITS", "subCategory": "rate_limited"},
         {"category": "INVALID_AUTHENTICATION"}),
    ],
)  # fmt: skip
async def test_refusals_are_worded_like_the_provider(
    errors: str, limit_body: dict[str, Any], auth_body: dict[str, Any]
) -> None:
    limited, unauthorized = await _refusals({"errors": errors})
    assert limited.status_code == 429 and unauthorized.status_code == 401

    def contains(body: Any, expected: dict[str, Any]) -> None:
        for key, value in expected.items():
            if isinstance(value, dict):
                contains(body[key], value)
            elif key == "message":
                assert body[key].startswith(value), body
            else:
                assert body[key] == value, body

    contains(limited.json(), limit_body)
    contains(unauthorized.json(), auth_body)
    assert unauthorized.headers["www-authenticate"].startswith("Bearer")


async def test_salesforce_says_invalid_session_id_and_request_limit_exceeded_with_a_403() -> None:
    limited, unauthorized = await _refusals({"errors": "salesforce", "rate_limit_status": 403})
    assert limited.status_code == 403
    assert limited.json() == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert unauthorized.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    assert limited.headers["retry-after"] == "1"


async def test_retry_after_as_a_float_an_http_date_or_not_at_all() -> None:
    limited, _ = await _refusals({"retry_after": "float"})
    assert limited.headers["retry-after"] == "1.0"
    before = time.time()
    limited, _ = await _refusals({"retry_after": "http_date"})
    when = email.utils.parsedate_to_datetime(limited.headers["retry-after"]).timestamp()
    # Rounded up to a whole second: never earlier than the second the farm meant.
    assert when >= before + 1 and when == int(when)
    limited, _ = await _refusals({"errors": "stripe", "retry_after": "omit"})
    assert limited.status_code == 429 and "retry-after" not in limited.headers


async def test_a_403_rate_limit_is_still_counted_as_a_rate_limit() -> None:
    spec = make_spec(
        dialect={"rate_limit_status": 403}, error_profile=SPIKE, tenants=[{"id": "acme"}]
    )
    async with running_farm([spec]) as farm, httpx.AsyncClient(base_url=farm.url) as c:
        response = await c.get(
            "/shop/v1/customers", headers=await auth_headers(c, farm, "shop", "acme")
        )
        assert response.status_code == 403
        admin = {"Authorization": f"Bearer {farm.admin_token}"}
        status = (await c.get("/admin/status", headers=admin)).json()
        counts = status["services"]["shop"]["tenants"]["acme"]
        assert counts["429"] == 1 and counts["403"] == 0  # what it means, not how it was worded


async def test_offset_and_link_header_pagination() -> None:
    resources = make_spec().model_dump(by_alias=True)["resources"]
    resources[0]["pagination"] = {"style": "offset", "page_size": 10, "max_page_size": 20}
    resources[1]["pagination"] = {"style": "link", "page_size": 10, "max_page_size": 20}
    spec = make_spec(resources=resources, tenants=[{"id": "acme"}])
    async with running_farm([spec]) as farm, httpx.AsyncClient(base_url=farm.url) as c:
        headers = await auth_headers(c, farm, "shop", "acme")
        ids: list[str] = []
        url: str | None = "/shop/v1/customers?limit=7"
        while url:
            body = (await c.get(url, headers=headers)).json()
            ids += [r["id"] for r in body["data"]]
            url = body["next"]
        assert ids == [f"cus_{i:06d}" for i in range(1, 31)]
        assert (
            "offset=7&limit=7"
            in (await c.get("/shop/v1/customers?limit=7", headers=headers)).json()["next"]
        )
        bad = await c.get("/shop/v1/customers?page=2", headers=headers)
        assert bad.status_code == 400 and "offset pagination" in bad.json()["detail"]
        ids, url = [], "/shop/v1/invoices?per_page=10"
        while url:
            response = await c.get(url, headers=headers)
            page = response.json()
            assert isinstance(page, list)  # a bare array, like GitHub
            ids += [r["id"] for r in page]
            url = response.links.get("next", {}).get("url")
        assert ids == [f"inv_{i:06d}" for i in range(1, 46)]


async def test_the_attempt_log_says_which_403_was_the_limit_and_which_the_credential() -> None:
    # GitHub's dialect answers its rate limit with 403, the status of a credential of another
    # tenant too: only the farm's own record can tell the judge which one a 403 was.
    spec = make_spec(
        dialect={"errors": "github", "rate_limit_status": 403},
        rate_limit={"max_rps": 0.01, "burst": 1},
    )
    async with running_farm([spec]) as farm, httpx.AsyncClient(base_url=farm.url) as c:
        acme = await auth_headers(c, farm, "shop", "acme")
        answers = [
            await c.get("/shop/v1/customers", headers=acme),
            await c.get("/shop/v1/customers", headers=acme),
            await c.get("/shop/v1/customers", headers={**acme, "X-Tenant-Id": "globex"}),
            await c.get("/shop/v1/customers", headers={"Authorization": "Bearer nope"}),
        ]
        rows = (await c.get("/admin/attempts", headers=admin_headers(farm))).json()["attempts"]
    assert [a.status_code for a in answers] == [200, 403, 403, 401]
    assert [r["status"] for r in rows] == [200, 403, 403, 401]
    assert [r["refusal"] for r in rows] == [None, "rate_limit", "auth:wrong_tenant", "auth:unknown"]
    assert rows[1]["retry_after"] is not None and rows[2]["retry_after"] is None
    # What the shop's IETF headers said was left (the credential refusals never reached it).
    assert [r["remaining"] for r in rows] == [0, 0, None, None]
