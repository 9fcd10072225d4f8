"""The reference AAM against the provider dialects and living data: a 403 that is a rate limit,
error codes in each provider's shape, Link-header pages, newest-first scans that shift, and
expired cursors (the scan restarts)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aam_helpers import describe, make_spec

from aam import errors
from aam.outcome import classify_status
from aam.pagination import cursor_expired, link_next
from aam.transport import RawResponse, error_code, is_rate_limit


def _response(status: int, body: Any, headers: dict[str, str] | None = None) -> RawResponse:
    import orjson

    return RawResponse(status, headers or {}, orjson.dumps(body), "GET", "/x")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"error": "invalid_token"}, "invalid_token"),
        ({"error": {"type": "idempotency_error", "code": "idempotency_key_in_flight"}},
         "idempotency_key_in_flight"),
        ([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
         "invalid_session_id"),
        ({"status": "error", "category": "RATE_LIMITS", "subCategory": "rate_limited"},
         "rate_limited"),
        ({"message": "Bad credentials"}, None),
        ({"errors": "Not found"}, None),
    ],
)  # fmt: skip
def test_error_codes_are_read_from_each_provider_shape(body: Any, code: str | None) -> None:
    assert error_code(_response(400, body)) == code


def test_a_403_is_a_rate_limit_only_when_it_says_so() -> None:
    github = _response(403, {"message": "You have exceeded a secondary rate limit."})
    salesforce = _response(403, [{"message": "x", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    with_retry = _response(403, {"message": "rate limit: slow down"}, {"retry-after": "3"})
    retry_only = _response(403, {"error": "forbidden"}, {"retry-after": "3"})
    forbidden = _response(403, {"error": "forbidden", "detail": "another tenant"})
    assert is_rate_limit(github) and is_rate_limit(salesforce) and is_rate_limit(with_retry)
    assert not is_rate_limit(forbidden) and not is_rate_limit(retry_only)
    kw: dict[str, Any] = {"connector_id": "s:t", "token_version": None, "oauth": False,
                          "idempotency_key": None}  # fmt: skip
    limited = classify_status(with_retry, **kw)
    assert isinstance(limited.error, errors.RateLimited) and limited.retryable
    assert limited.retry_after == 3
    refused = classify_status(forbidden, **kw)
    assert isinstance(refused.error, errors.InvalidCredentials) and not refused.retryable


def test_link_headers_and_expired_cursors() -> None:
    assert link_next('</github/issues?page=2&per_page=30>; rel="next"') == (
        "/github/issues?page=2&per_page=30"
    )
    both = '<https://a/x?page=1>; rel="prev", <https://a/x?page=3>; rel="next"'
    assert link_next(both) == "https://a/x?page=3"
    assert link_next('<https://a/x?page=1>; rel="prev"') is None and link_next(None) is None
    assert cursor_expired(errors.ClientError("gone", status=410))
    assert cursor_expired(errors.ClientError("x", status=400, reason="cursor_expired"))
    assert cursor_expired(errors.ClientError("x", status=400, reason="invalid_query_locator"))
    assert not cursor_expired(errors.ClientError("x", status=400, reason="invalid_request"))


async def test_the_aam_scans_a_newest_first_link_listing_once_per_record(
    farm_factory, mesh_factory
):
    resources = make_spec().model_dump(by_alias=True)["resources"]
    resources[0]["pagination"] = {"style": "link", "page_size": 5, "max_page_size": 50}
    spec = make_spec(
        resources=resources,
        dialect={"errors": "github", "rate_limit_status": 403},
        living={"creates_per_minute": 3000, "order": "newest_first"},
    )
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory()
        mesh.add_connector(describe(spec, "acme", farm.credentials("svc", "acme"), farm.url))
        ids = []
        async for record in mesh.paginate("svc:acme", "/items", {"per_page": 5}):
            ids.append(record["id"])
            await asyncio.sleep(0.01)  # other users open records meanwhile: pages shift
        assert len(ids) == len(set(ids))  # each record once, though pages overlapped
        assert {f"ite_{i:06d}" for i in range(1, 31)} <= set(ids)  # none that existed missed


async def test_the_aam_restarts_a_scan_when_its_cursor_expires(farm_factory, mesh_factory):
    spec = make_spec(
        dialect={"errors": "stripe", "retry_after": "omit"},
        living={"cursor_ttl_seconds": 0.05, "cursor_expired_status": 400},
    )
    async with farm_factory([spec]) as farm:
        mesh = await mesh_factory()
        mesh.add_connector(describe(spec, "acme", farm.credentials("svc", "acme"), farm.url))
        ids = []
        pages_slow = 0
        async for record in mesh.paginate("svc:acme", "/items", {"limit": 10}):
            ids.append(record["id"])
            if len(ids) == 10 and pages_slow == 0:
                pages_slow += 1
                await asyncio.sleep(0.1)  # the cursor of page 2 expires meanwhile
        assert sorted(ids) == [f"ite_{i:06d}" for i in range(1, 31)]
        ledger = await farm.status()
        counts = ledger["services"]["svc"]["tenants"]["acme"]
        assert counts["other_4xx"] == 1  # one expired cursor, then the scan started over
