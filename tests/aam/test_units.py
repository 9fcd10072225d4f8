"""Unit tests: token lifecycle, drift mapping, transport classification, SQLite stores."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import httpx
import pytest
from aam_helpers import describe, make_spec

from aam import errors
from aam.calllog import CallLog, Retention
from aam.credentials import IssuedToken, TenantCredentials, TokenLifecycle
from aam.dlq import DeadLetterQueue
from aam.drift import DriftEvent, SchemaGuard
from aam.idempotency import IdempotencyStore, derive_key, random_key, request_hash
from aam.store import StateStore
from aam.transport import classify_transport_error


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# -- errors ------------------------------------------------------------------------------------
def test_every_error_class_is_exactly_one_leaf():
    leaves = [errors.error_type(name) for name in errors.ERROR_CLASSES]
    assert len(set(leaves)) == 8
    for leaf, name in zip(leaves, errors.ERROR_CLASSES, strict=True):
        assert issubclass(leaf, errors.AamError)
        assert leaf.error_class == name
        others = [o for o in leaves if o is not leaf]
        assert not any(issubclass(leaf, o) for o in others)


def test_credentials_never_show_secrets_in_repr():
    creds = TenantCredentials(client_id="cid", client_secret="s3cr3t-value", api_key="k3y-value")
    assert "s3cr3t" not in repr(creds) and "k3y" not in repr(creds)


# -- token lifecycle ---------------------------------------------------------------------------
async def test_concurrent_callers_share_one_token_request():
    calls = 0

    async def fetch() -> IssuedToken:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return IssuedToken(f"tok{calls}", 60)

    life = TokenLifecycle(fetch)
    tokens = await asyncio.gather(*(life.token() for _ in range(50)))
    assert calls == 1
    assert {t for t, _ in tokens} == {"tok1"}


async def test_token_is_refreshed_ahead_of_expiry_with_skew():
    clock = Clock()
    calls = 0

    async def fetch() -> IssuedToken:
        nonlocal calls
        calls += 1
        return IssuedToken(f"tok{calls}", 100)

    life = TokenLifecycle(fetch, clock=clock, skew_seconds=30)
    assert (await life.token())[0] == "tok1"
    clock.now += 79  # skew is min(30, 20% of 100) = 20 s: not yet
    assert (await life.token())[0] == "tok1"
    clock.now += 2  # inside the skew window: old token still served, refresh in background
    assert (await life.token())[0] == "tok1"
    for _ in range(10):  # let the background refresh task run
        await asyncio.sleep(0)
    assert calls == 2
    assert (await life.token())[0] == "tok2"


async def test_401_for_a_rotated_token_refreshes_once_for_all_callers():
    calls = 0

    async def fetch() -> IssuedToken:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return IssuedToken(f"tok{calls}", 3600)

    life = TokenLifecycle(fetch)
    _, version = await life.token()
    retry = await asyncio.gather(*(life.on_unauthorized(version) for _ in range(20)))
    assert all(retry)
    assert calls == 2
    assert (await life.token())[0] == "tok2"


async def test_invalid_credentials_fail_fast_and_are_never_retried():
    calls = 0

    async def fetch() -> IssuedToken:
        nonlocal calls
        calls += 1
        raise errors.InvalidCredentials("invalid_client")

    life = TokenLifecycle(fetch)
    for _ in range(5):
        with pytest.raises(errors.InvalidCredentials):
            await life.token()
    assert calls == 1


async def test_without_refresh_the_token_is_fetched_once_and_401s_are_final():
    clock = Clock()
    calls = 0

    async def fetch() -> IssuedToken:
        nonlocal calls
        calls += 1
        return IssuedToken("tok", 10)

    life = TokenLifecycle(fetch, refresh=False, clock=clock)
    _, version = await life.token()
    clock.now += 100
    await life.token()
    assert calls == 1
    assert await life.on_unauthorized(version) is False


# -- drift -------------------------------------------------------------------------------------
SPEC = describe(make_spec(), "acme", {"api_key": "k" * 20}, "http://svc.invalid").resources
V1 = {"id": "i1", "name": "A", "amount": 12.5, "email": "a@x.io", "external_id": "e"}


def normalise(guard: SchemaGuard, body, require=None):
    events: list[DriftEvent] = []
    out = guard.normalise_body("/items", body, require, "2", events)
    return out, events


def test_v1_records_pass_through_untouched():
    guard = SchemaGuard(SPEC)
    body = {"data": [dict(V1)], "next": None}
    out, events = normalise(guard, body)
    assert out is body and events == []


def test_an_obvious_rename_is_mapped_back_and_recorded_once():
    guard = SchemaGuard(SPEC)
    rec = {**{k: v for k, v in V1.items() if k != "email"}, "email_address": "a@x.io"}
    out, events = normalise(guard, {"data": [rec, dict(rec)], "next": None})
    assert [r["email"] for r in out["data"]] == ["a@x.io", "a@x.io"]
    assert "email_address" not in out["data"][0]
    found = [(e.field, e.action, e.observed) for e in events]
    assert found == [("email", "mapped", "email_address")]


def test_configured_mapping_wins_for_a_non_obvious_rename():
    rec = {**{k: v for k, v in V1.items() if k != "name"}, "title": "A"}
    with pytest.raises(errors.SchemaDrift):
        normalise(SchemaGuard(SPEC), {"data": [rec]})
    out, _ = normalise(SchemaGuard(SPEC, {"items": {"title": "name"}}), {"data": [rec]})
    assert out["data"][0]["name"] == "A"


def test_retyped_amount_is_converted_back_exactly():
    guard = SchemaGuard(SPEC)
    out, events = normalise(guard, {"data": [{**V1, "amount": "12.5"}, {**V1, "amount": "7"}]})
    assert [r["amount"] for r in out["data"]] == [12.5, 7]
    assert [e.action for e in events] == ["retyped"]


def test_a_removed_required_field_raises_schema_drift_not_wrong_data():
    guard = SchemaGuard(SPEC)
    rec = {k: v for k, v in V1.items() if k != "amount"}
    events: list[DriftEvent] = []
    with pytest.raises(errors.SchemaDrift) as info:
        guard.normalise_body("/items", {"data": [rec]}, None, "2", events)
    assert info.value.error_class == "schema_drift"
    assert [e.action for e in events] == ["refused"]
    # A caller that does not rely on the field still gets its records.
    out, _ = normalise(SchemaGuard(SPEC), {"data": [rec]}, require=["name"])
    assert out["data"][0]["name"] == "A"


def test_a_lossy_retype_is_refused():
    guard = SchemaGuard(SPEC)
    with pytest.raises(errors.SchemaDrift):
        normalise(guard, {"data": [{**V1, "amount": True}]})
    with pytest.raises(errors.SchemaDrift):
        normalise(guard, {"data": [{**V1, "name": 12}]})


def test_disabled_guard_returns_raw_bodies():
    guard = SchemaGuard(SPEC, enabled=False)
    rec = {k: v for k, v in V1.items() if k != "amount"}
    out, events = normalise(guard, {"data": [rec]})
    assert out == {"data": [rec]} and events == []


def test_item_paths_are_routed_to_their_resource():
    guard = SchemaGuard(SPEC)
    assert guard.route("/items/ite_1?x=1") == ("items", True)
    assert guard.route("/items?cursor=abc") == ("items", False)
    assert guard.route("/other") is None


# -- transport classification ------------------------------------------------------------------
def _wrapped(cause: BaseException, outer: type[httpx.HTTPError]) -> httpx.HTTPError:
    try:
        raise outer("mapped") from cause
    except httpx.HTTPError as exc:
        return exc


@pytest.mark.parametrize(
    ("cause", "outer", "error_class", "maybe_sent"),
    [
        # httpx-aiohttp maps a server disconnect to ConnectTimeout: it is a network error.
        (aiohttp.ServerDisconnectedError(), httpx.ConnectTimeout, "network_error", True),
        (aiohttp.ClientPayloadError("cut"), httpx.ReadError, "network_error", True),
        (aiohttp.SocketTimeoutError("read"), httpx.ReadTimeout, "timeout", True),
        (aiohttp.ConnectionTimeoutError("pool"), httpx.ConnectTimeout, "timeout", False),
        (aiohttp.ClientOSError(104, "reset"), httpx.ConnectTimeout, "network_error", True),
    ],
)
def test_transport_failures_are_classified_by_their_real_cause(
    cause, outer, error_class, maybe_sent
):
    failure = classify_transport_error(_wrapped(cause, outer))
    assert (failure.error_class, failure.maybe_sent) == (error_class, maybe_sent)


def test_connect_refused_was_never_sent():
    exc = httpx.ConnectError("refused")
    failure = classify_transport_error(exc)
    assert (failure.error_class, failure.maybe_sent) == ("network_error", False)


# -- stores ------------------------------------------------------------------------------------
async def test_idempotency_keys_are_deterministic_per_operation(tmp_path: Path):
    assert derive_key("a:b", "/p", "op-1") == derive_key("a:b", "/p", "op-1")
    assert derive_key("a:b", "/p", "op-1") != derive_key("a:b", "/p", "op-2")
    assert derive_key("a:b", "/p", "op-1") != derive_key("a:c", "/p", "op-1")
    assert random_key() != random_key()
    assert request_hash({"a": 1, "b": 2}) == request_hash({"b": 2, "a": 1})
    store = await StateStore.open(tmp_path / "s.db")
    keys = IdempotencyStore(store)
    await keys.begin("k", "c", "/p", "h")
    pending = await keys.get("k")
    assert pending is not None and pending.status == "pending"
    await keys.complete("k", {"id": 1})
    record = await keys.get("k")
    assert record is not None and (record.status, record.response) == ("done", {"id": 1})
    assert await keys.get("other") is None
    await store.close()


async def test_call_log_batches_rows_and_survives_reopen(tmp_path: Path):
    store = await StateStore.open(tmp_path / "s.db")
    log = CallLog(store, batch_size=10, flush_interval=60)
    log.start()
    for i in range(25):
        log.record(("c:t", "t", 1.0 + i, "GET", "/p", 200, None, 0, None, 0.001))
    await asyncio.sleep(0.05)  # two full batches were signalled; the tail waits for close
    await log.close()
    await store.close()
    store = await StateStore.open(tmp_path / "s.db")
    async with store.conn.execute("SELECT COUNT(*), MIN(ts) FROM call_log") as cur:
        assert await cur.fetchone() == (25, 1.0)
    async with store.conn.execute("PRAGMA journal_mode") as cur:
        assert await cur.fetchone() == ("wal",)
    await store.close()


async def test_call_log_retention_keeps_it_bounded(tmp_path: Path):
    store = await StateStore.open(tmp_path / "s.db")
    log = CallLog(store, retention=Retention(max_rows=50, max_age_seconds=1e9, every_flushes=1))
    for i in range(120):
        log.record(("c:t", "t", 1e12 + i, "GET", "/p", 200, None, 0, None, 0.001))
    await log.flush()
    async with store.conn.execute("SELECT COUNT(*), MAX(ts) FROM call_log") as cur:
        assert await cur.fetchone() == (50, 1e12 + 119)
    await store.close()


async def test_call_log_buffer_is_bounded_when_the_disk_stalls(tmp_path: Path):
    store = await StateStore.open(tmp_path / "s.db")
    log = CallLog(store, batch_size=10, max_buffer=100)
    for i in range(1000):
        log.record(("c:t", "t", float(i), "GET", "/p", 200, None, 0, None, 0.0))
    assert log.dropped >= 890
    await store.close()


async def test_dlq_keeps_entries_until_replayed(tmp_path: Path):
    store = await StateStore.open(tmp_path / "s.db")
    sent: list[str | None] = []

    async def sender(entry):
        sent.append(entry.idempotency_key)
        if entry.payload["n"] == 2:
            raise errors.ClientError("bad", attempts=1)
        return {"ok": True}

    dlq = DeadLetterQueue(store, sender)
    for n in range(3):
        await dlq.add("c:t", "/p", {"n": n}, f"k{n}", errors.ServerError("boom", attempts=4))
    assert await dlq.depth() == 3
    report = await dlq.replay()
    assert (report.replayed, report.failed) == (2, 1)
    assert sent == ["k0", "k1", "k2"]
    assert await dlq.depth() == 0
    statuses = {e.payload["n"]: e.status for e in await dlq.list()}
    assert statuses == {0: "replayed", 1: "replayed", 2: "failed"}
    await store.close()


async def test_a_cancelled_waiter_does_not_cancel_the_shared_refresh():
    gate = asyncio.Event()
    calls = 0

    async def fetch() -> IssuedToken:
        nonlocal calls
        calls += 1
        await gate.wait()
        return IssuedToken("tok", 60)

    life = TokenLifecycle(fetch)
    first = asyncio.ensure_future(life.token())
    second = asyncio.ensure_future(life.token())
    await asyncio.sleep(0)
    first.cancel()
    gate.set()
    assert (await second)[0] == "tok"
    assert calls == 1


def test_pages_of_a_verified_version_still_catch_a_retype_on_the_fast_path():
    guard = SchemaGuard(SPEC)
    clean = {"data": [dict(V1), {**V1, "id": "i2"}], "next": None}
    events: list[DriftEvent] = []
    assert guard.normalise_body("/items", clean, None, "1", events) is clean
    assert guard.normalise_body("/items", clean, None, "1", events) is clean  # fast path
    # The server retypes without bumping the version: the first record's values are checked.
    sneaky = {"data": [{**V1, "amount": "3.5"}, {**V1, "amount": "4"}], "next": None}
    out = guard.normalise_body("/items", sneaky, None, "1", events)
    assert [r["amount"] for r in out["data"]] == [3.5, 4]
    assert [e.action for e in events] == ["retyped"]


async def test_dlq_prune_forgets_only_old_replayed_entries(tmp_path: Path):
    store = await StateStore.open(tmp_path / "s.db")

    async def sender(entry):
        return {}

    dlq = DeadLetterQueue(store, sender)
    for n in range(3):
        await dlq.add("c:t", "/p", {"n": n}, f"k{n}", errors.ServerError("boom"))
    await dlq.replay(limit=2)
    assert await dlq.prune(older_than_seconds=3600) == 0  # too recent
    assert await dlq.prune(older_than_seconds=-1) == 2
    assert [e.payload["n"] for e in await dlq.list()] == [2]  # the waiting one is kept
    await store.close()


@pytest.mark.parametrize(
    ("status", "body", "oauth", "key", "expected"),
    [
        (401, b'{"error": "invalid_token"}', True, None, ("auth_expired", False, False)),
        (401, b'{"error": "invalid_token"}', False, None, ("invalid_creds", False, False)),
        (403, b'{"error": "forbidden"}', True, None, ("invalid_creds", False, False)),
        (429, b'{"error": "rate_limited"}', True, None, ("rate_limit", True, False)),
        (503, b'{"error": "injected_fault"}', True, None, ("server_error", True, True)),
        (409, b'{"error": "idempotency_key_in_flight"}', True, "k", ("client_error", True, True)),
        (422, b'{"error": "idempotency_key_reuse"}', True, "k", ("client_error", False, False)),
        (404, b"not json", True, None, ("client_error", False, False)),
    ],
)
def test_every_error_answer_maps_to_one_class_and_a_retry_decision(
    status, body, oauth, key, expected
):
    from aam.outcome import classify_status
    from aam.transport import RawResponse

    response = RawResponse(status, {"retry-after": "1"}, body, "POST", "/items")
    failure = classify_status(
        response, connector_id="svc:acme", token_version=3, oauth=oauth, idempotency_key=key
    )
    got = (failure.error.error_class, failure.retryable, failure.maybe_committed)
    assert got == expected
    assert failure.error.status == status and failure.error.connector_id == "svc:acme"
    if expected[0] == "auth_expired":
        assert failure.auth_version == 3
