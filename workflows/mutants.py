"""Mutant AAMs: the reference AAM with one realistic bug each, to prove the judge catches it.

Each mutant is a wrapper over the AAM-under-test contract (so it runs in-process and, through
``gauntlet aam serve --mutant NAME``, over HTTP): it changes what goes in (operations), what comes
out (outcomes), or runs the reference AAM with one of its documented bug switches
(:class:`aam.bugs.Bugs`). Every mutant names the scenario that exercises its bug and the
invariant that must fail; ``make mutants`` runs them all and writes the table in
workflows/README.md, and the test suite requires every one to be ``FAILED`` on that invariant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aam.bugs import Bugs
from aam.contract import AamUnderTest, Operation, Outcome, ReplayCounts
from aam.descriptor import ConnectorDescriptor
from workflows.evidence import OP_PARAM


class ContractWrapper:
    """An :class:`AamUnderTest` that forwards everything to ``inner``; mutants override parts."""

    def __init__(self, inner: AamUnderTest) -> None:
        self.inner = inner
        self.descriptors: dict[str, ConnectorDescriptor] = {}

    async def put_connector(self, descriptor: ConnectorDescriptor) -> None:
        self.descriptors[descriptor.connector_id] = descriptor
        await self.inner.put_connector(descriptor)

    async def drop_connectors(self) -> None:
        self.descriptors.clear()
        await self.inner.drop_connectors()

    async def call(self, operation: Operation) -> Outcome:
        return await self.inner.call(operation)

    async def replay_dlq(self) -> ReplayCounts:
        return await self.inner.replay_dlq()

    def diagnostics(self, connector_id: str) -> dict[str, Any] | None:
        return self.inner.diagnostics(connector_id)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Hangs(ContractWrapper):
    """Every call waits forever (a deadlocked pool, an await on a future nobody completes)."""

    async def call(self, operation: Operation) -> Outcome:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class RelabelsErrors(ContractWrapper):
    """Every failure comes back as ``client_error`` (a catch-all ``except`` in the error mapper)."""

    async def call(self, operation: Operation) -> Outcome:
        outcome = await self.inner.call(operation)
        if outcome.ok:
            return outcome
        return Outcome.failure("client_error", outcome.message or "error")


class OkWhileDeferred(ContractWrapper):
    """A write parked in the DLQ is reported ``ok`` ("it will go through eventually")."""

    async def call(self, operation: Operation) -> Outcome:
        outcome = await self.inner.call(operation)
        if not outcome.ok and outcome.deferred:
            return Outcome.success({})
        return outcome


class CorruptsWrites(ContractWrapper):
    """Every field of a written body but the lookup field is mangled (a serializer that drops
    values to their defaults)."""

    async def call(self, operation: Operation) -> Outcome:
        if operation.method != "POST" or not operation.body:
            return await self.inner.call(operation)
        lookup = _lookup_fields(self.descriptors.get(operation.connector_id))
        body = {k: (v if k in lookup else _mangle(v)) for k, v in operation.body.items()}
        return await self.inner.call(operation.model_copy(update={"body": body}))


class ReadsHalfAPage(ContractWrapper):
    """A paginated read returns half of the first page and never follows ``next``."""

    async def call(self, operation: Operation) -> Outcome:
        if not operation.paginate:
            return await self.inner.call(operation)
        first = operation.model_copy(update={"paginate": False, "max_records": None})
        outcome = await self.inner.call(first)
        if not outcome.ok:
            return outcome
        data = outcome.data if isinstance(outcome.data, dict) else {}
        records = [r for r in data.get("data") or [] if isinstance(r, dict)]
        return Outcome.success(records=records[: max(1, len(records) // 2)])


class CachesReadsForever(ContractWrapper):
    """GETs are cached by path and parameters, forever (no TTL, no invalidation)."""

    def __init__(self, inner: AamUnderTest) -> None:
        super().__init__(inner)
        self._cache: dict[tuple[str, str, str], Outcome] = {}

    async def call(self, operation: Operation) -> Outcome:
        if operation.method != "GET":
            return await self.inner.call(operation)
        params = {k: v for k, v in (operation.params or {}).items() if k != OP_PARAM}
        key = (operation.connector_id, operation.path, repr(sorted(params.items())))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        outcome = await self.inner.call(operation)
        if outcome.ok:
            self._cache[key] = outcome
        return outcome


class EmptyOnError(ContractWrapper):
    """A read that fails for any reason comes back ``ok`` with nothing in it (errors swallowed)."""

    async def call(self, operation: Operation) -> Outcome:
        outcome = await self.inner.call(operation)
        if outcome.ok or operation.method != "GET":
            return outcome
        if operation.paginate:
            return Outcome.success(records=[])
        return Outcome.success({"data": [], "next": None})


class UnderUses(ContractWrapper):
    """One request every 2 s per connector, whatever the limit (a hard-coded pacing constant)."""

    def __init__(self, inner: AamUnderTest, interval: float = 2.0) -> None:
        super().__init__(inner)
        self.interval = interval
        self._locks: dict[str, asyncio.Lock] = {}

    async def call(self, operation: Operation) -> Outcome:
        lock = self._locks.setdefault(operation.connector_id, asyncio.Lock())
        async with lock:
            await asyncio.sleep(self.interval)
            return await self.inner.call(operation)


class SwapsFields(ContractWrapper):
    """Two fields of every record read are swapped (a positional mapping off by one)."""

    async def call(self, operation: Operation) -> Outcome:
        outcome = await self.inner.call(operation)
        if not outcome.ok or operation.method != "GET":
            return outcome
        desc = self.descriptors.get(operation.connector_id)
        return _map_records(outcome, lambda r: _swap_two(r, desc))


class DlqPersistsNothing(ContractWrapper):
    """Failed writes are reported deferred, but the DLQ keeps nothing, so a replay has nothing to
    send (an in-memory queue lost at the end of the request)."""

    async def call(self, operation: Operation) -> Outcome:
        outcome = await self.inner.call(operation)
        if operation.method == "POST" and not outcome.ok:
            return Outcome.failure(
                outcome.error_class or "server_error", outcome.message or "", deferred=True
            )
        return outcome

    async def replay_dlq(self) -> ReplayCounts:
        return ReplayCounts(replayed=0, failed=0, pending=0)


# --- helpers ------------------------------------------------------------------------------------


def _lookup_fields(desc: ConnectorDescriptor | None) -> set[str]:
    if desc is None:
        return set()
    return {r.lookup_field for r in desc.resources.values() if r.lookup_field}


def _mangle(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return 0
    if isinstance(value, str):
        return ""
    return None


def _map_records(outcome: Outcome, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Outcome:
    if outcome.records is not None:
        return Outcome.success(
            outcome.data, records=[fn(r) if isinstance(r, dict) else r for r in outcome.records]
        )
    data = outcome.data
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        return Outcome.success(
            {**data, "data": [fn(r) if isinstance(r, dict) else r for r in data["data"]]}
        )
    if isinstance(data, dict) and "id" in data:
        return Outcome.success(fn(data))
    return outcome


def _swap_two(record: dict[str, Any], desc: ConnectorDescriptor | None) -> dict[str, Any]:
    lookups = _lookup_fields(desc)
    names = [k for k, v in record.items() if k != "id" and k not in lookups and isinstance(v, str)]
    if len(names) < 2:
        return record
    a, b = names[0], names[1]
    swapped = dict(record)
    swapped[a], swapped[b] = record[b], record[a]
    return swapped


@dataclass(frozen=True)
class Mutant:
    """One realistic bug: how to build it, where it shows, what must catch it."""

    name: str
    bug: str
    scenario: str
    expect: str
    #: The reference AAM's profile and bug switches under the wrapper.
    profile: str = "full"
    bugs: Bugs = field(default_factory=Bugs)
    wrap: Callable[[AamUnderTest], AamUnderTest] | None = None
    #: Scenario overrides for a short, focused run (duration, services, workflows...).
    overrides: dict[str, Any] = field(default_factory=dict)


def _short(seconds: float = 10, **kw: Any) -> dict[str, Any]:
    return {"duration_seconds": seconds, **kw}


MUTANTS: tuple[Mutant, ...] = (
    Mutant("hangs", "every call hangs forever", "storm", "operations_succeed", wrap=Hangs,
           overrides=_short(8, operation_deadline_seconds=3)),
    Mutant("relabels-errors", "every error relabelled client_error, retries off", "storm",
           "retry_success_rate", profile="full-retries", wrap=RelabelsErrors, overrides=_short()),
    Mutant("ok-while-deferred", "a failed write reported ok while it sits in the DLQ",
           "storm", "no_lost_writes", wrap=OkWhileDeferred, overrides=_short(14)),
    Mutant("corrupts-writes", "every field but the lookup field corrupted on write", "storm",
           "writes_intact", wrap=CorruptsWrites, overrides=_short()),
    Mutant("half-a-page", "reads half of page 1, never follows next", "storm", "reads_complete",
           wrap=ReadsHalfAPage, overrides=_short()),
    Mutant("caches-forever", "caches every GET forever", "storm", "reads_fresh",
           wrap=CachesReadsForever, overrides=_short(15)),
    Mutant("empty-on-error", "returns empty pages once drift appears, or on any error", "storm",
           "reads_complete", wrap=EmptyOnError, overrides=_short()),
    Mutant("ignores-retry-after", "ignores Retry-After", "rate-limit-storm",
           "rate_limit_etiquette", bugs=Bugs(ignore_retry_after=True), overrides=_short()),
    Mutant("under-uses", "sends one request every 2 s", "storm", "rate_limit_etiquette",
           wrap=UnderUses, overrides=_short(12)),
    Mutant("retries-without-budget", "10 attempts per call, no budget, in an outage",
           "circuit-breaker-outage", "bounded_load_amplification",
           bugs=Bugs(max_attempts=10, no_retry_budget=True), profile="full-circuit_breaker",
           overrides=_short()),
    Mutant("no-backoff", "no backoff, Retry-After ignored", "storm", "rate_limit_etiquette",
           bugs=Bugs(no_backoff=True, ignore_retry_after=True), overrides=_short()),
    Mutant("token-per-call", "a new token before every attempt", "storm", "token_etiquette",
           bugs=Bugs(token_per_attempt=True), overrides=_short()),
    Mutant("never-refreshes", "a token is never refreshed (salesforce tokens live 20 s)", "storm",
           "auth_transparent", profile="full-token_refresh", overrides=_short(24)),
    Mutant("swaps-fields", "two non-drifting fields swapped in records read", "storm",
           "reads_correct", wrap=SwapsFields, overrides=_short()),
    Mutant("rounds-retyped", "retyped amounts rounded (283.5 -> 284.0)", "storm",
           "drift_handled", bugs=Bugs(round_retyped_numbers=True), overrides=_short()),
    Mutant("none-for-renamed", "None for a renamed field", "storm", "drift_handled",
           bugs=Bugs(none_for_renamed=True), overrides=_short()),
    Mutant("wrong-rename-target", "a renamed field mapped into the wrong v1 field", "storm",
           "drift_handled", bugs=Bugs(rename_into_wrong_field=True), overrides=_short()),
    Mutant("fresh-key-per-retry", "a fresh idempotency key per retry", "network-chaos-dlq",
           "no_duplicate_writes", bugs=Bugs(fresh_key_per_attempt=True), overrides=_short(12)),
    Mutant("dlq-persists-nothing", "a DLQ that persists nothing", "storm",
           "no_lost_writes", wrap=DlqPersistsNothing, overrides=_short(14)),
    Mutant("parks-writes-at-once", "a failed write parked in the DLQ at once, never retried",
           "storm", "bounded_dlq", profile="full-retries", overrides=_short(
               14, services=["stripe"],
               workflows=[{"name": "idempotent_write", "concurrency": 4}])),
    Mutant("replay-without-key", "a DLQ replay without the idempotency key", "network-chaos-dlq",
           "no_duplicate_writes", bugs=Bugs(replay_without_key=True), overrides=_short(12)),
)  # fmt: skip


async def open_mutant(name: str, state_dir: Path, *, seed: int | None = None) -> AamUnderTest:
    """The reference AAM with the mutant's profile and bug switches, in its wrapper."""
    from aam import Mesh
    from aam.profile import AamProfile

    m = mutant(name)
    inner = await Mesh.open(
        state_dir=state_dir, profile=AamProfile.parse(m.profile), seed=seed, bugs=m.bugs
    )
    return m.wrap(inner) if m.wrap is not None else inner


def mutant(name: str) -> Mutant:
    """A mutant by name; unknown names list the known ones."""
    for m in MUTANTS:
        if m.name == name:
            return m
    raise KeyError(f"unknown mutant {name!r}: expected one of {', '.join(m.name for m in MUTANTS)}")
