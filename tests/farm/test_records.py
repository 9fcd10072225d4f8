"""Deterministic, realistic, tenant-scoped records; pagination covers every record exactly once."""

from __future__ import annotations

import re
from datetime import date, datetime

from farm_helpers import make_spec
from hypothesis import given, settings
from hypothesis import strategies as st

from farm.pagination import PaginationError, decode_cursor, encode_cursor, parse_page_request
from farm.records import RecordStore, index_of, record_id
from farm.spec import Pagination, PaginationStyle


def _store(seed: int) -> RecordStore:
    spec = make_spec()
    return RecordStore({spec.id: spec}, seed)


def test_same_seed_same_records_and_another_seed_other_records() -> None:
    a = _store(1).table("shop", "acme", "invoices").slice(0, 45)
    b = _store(1).table("shop", "acme", "invoices").slice(0, 45)
    c = _store(2).table("shop", "acme", "invoices").slice(0, 45)
    assert a == b and a != c


def test_records_are_generated_lazily_and_independently_of_order() -> None:
    forward = _store(3).table("shop", "acme", "customers")
    backward = _store(3).table("shop", "acme", "customers")
    assert [backward.get(i) for i in reversed(range(30))][::-1] == forward.slice(0, 30)


def test_records_look_real_and_foreign_keys_resolve() -> None:
    store = _store(4)
    customers = store.table("shop", "acme", "customers")
    for invoice in store.table("shop", "acme", "invoices").slice(0, 45):
        assert customers.find(invoice["customer_id"]) is not None
        assert isinstance(invoice["amount"], float) and invoice["amount"] > 0
        date.fromisoformat(invoice["due_date"])
    for customer in customers.slice(0, 30):
        first, last = customer["name"].lower().split(" ")
        assert re.fullmatch(rf"{first}\.{last}@[a-z]+\.[a-z]+", customer["email"])
        assert customer["company"].split(" ")[0].lower() in customer["email"]


def test_created_records_follow_the_seeded_ones_and_are_found_by_lookup() -> None:
    table = _store(5).table("shop", "acme", "invoices")
    assert table.matching("external_id", "new-1") == []
    created = table.create({"external_id": "new-1", "amount": 5.0}, "2025-01-01T00:00:00Z")
    assert created["id"] == record_id("invoices", 45) == "inv_000046"
    assert table.find("inv_000046") == created and table.matching("external_id", "new-1") == [45]
    datetime.fromisoformat(created["created_at"].replace("Z", "+00:00"))


def test_ids_round_trip_and_foreign_ids_are_unknown() -> None:
    assert index_of("invoices", record_id("invoices", 41)) == 41
    for bad in ("cus_000001", "inv_", "inv_x", "inv_000000", "nonsense"):
        assert index_of("invoices", bad) is None


@settings(max_examples=200, deadline=None)
@given(
    total=st.integers(0, 500),
    size=st.integers(1, 100),
    style=st.sampled_from(list(PaginationStyle)),
)
def test_following_next_visits_every_offset_exactly_once(
    total: int, size: int, style: PaginationStyle
) -> None:
    pagination = Pagination(style=style, page_size=size, max_page_size=100)
    query: dict[str, str] = {}
    visited: list[int] = []
    for _ in range(total + 2):
        request = parse_page_request(query, pagination)
        visited += list(range(request.offset, min(total, request.offset + request.limit)))
        if request.offset + request.limit >= total:
            break
        query = dict(pair.split("=") for pair in request.next_query().split("&"))
    assert visited == list(range(total))


@given(st.integers(0, 10**11))
def test_cursors_round_trip(offset: int) -> None:
    assert decode_cursor(encode_cursor(offset)) == offset


@given(st.text(max_size=20))
def test_garbage_cursors_are_refused_not_crashing(cursor: str) -> None:
    try:
        offset = decode_cursor(cursor)
    except PaginationError:
        return
    assert offset >= 0
