"""``Mesh``: the reference AAM's front door — connectors by id, shared stores, one lifecycle.

It implements the AAM-under-test contract (:class:`aam.contract.AamUnderTest`) directly, so the
Gauntlet drives it in-process with the same descriptors, operations and outcomes it sends an
AAM over HTTP.

```python
mesh = await Mesh.open(state_dir=Path("var/aam"), profile=AamProfile.parse("full"))
mesh.add_connector(ConnectorDescriptor.model_validate(descriptor_json))
page = await mesh.aam_get("stripe:acme", "/invoices", {"limit": 50})
outcome = await mesh.call(Operation(connector_id="stripe:acme", method="GET", path="/invoices"))
await mesh.close()
```
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from aam.bugs import Bugs
from aam.calllog import CallLog, Retention
from aam.connector import ConnectorInstance
from aam.contract import Operation, Outcome, ReplayCounts
from aam.descriptor import ConnectorDescriptor
from aam.dlq import FAILED, PENDING, REPLAYING, DeadLetterQueue, DlqEntry
from aam.errors import AamError
from aam.idempotency import IdempotencyStore
from aam.intents import WriteIntents
from aam.policy import RatePolicy
from aam.profile import AamProfile
from aam.stats import stats_dict
from aam.store import StateStore
from aam.transport import NetworkProfile

DB_NAME = "aam.sqlite3"
#: Forget finished idempotency keys after this long (servers forget theirs too; spec default).
KEY_RETENTION_SECONDS = 86400.0
#: Keep replayed DLQ entries this long for inspection; waiting and failed ones stay until handled.
REPLAYED_RETENTION_SECONDS = 7 * 86400.0


class Mesh:
    """All connectors of one AAM process, sharing one SQLite store."""

    def __init__(
        self,
        store: StateStore,
        profile: AamProfile,
        calllog: CallLog,
        *,
        seed: int | None = None,
        bugs: Bugs | None = None,
    ) -> None:
        self.store = store
        self.profile = profile
        #: Documented bug switches (the judge's mutant suite only; all off normally).
        self.bugs = bugs or Bugs()
        self.calllog = calllog
        self.seed = seed
        self.idempotency = IdempotencyStore(store)
        self.intents = WriteIntents(store)
        self.dlq = DeadLetterQueue(store, sender=self._replay_one, on_change=self._dlq_changed)
        self._connectors: dict[str, ConnectorInstance] = {}
        self._depth_tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @classmethod
    async def open(
        cls,
        state_dir: Path,
        profile: AamProfile | None = None,
        *,
        seed: int | None = None,
        bugs: Bugs | None = None,
        calllog_batch: int = 100,
        calllog_flush_seconds: float = 0.5,
        retention: Retention | None = None,
    ) -> Mesh:
        """Open (or create) the state under ``state_dir`` and start the call-log writer."""
        store = await StateStore.open(Path(state_dir) / DB_NAME)
        calllog = CallLog(
            store,
            batch_size=calllog_batch,
            flush_interval=calllog_flush_seconds,
            retention=retention,
        )
        calllog.start()
        mesh = cls(store, profile or AamProfile(), calllog, seed=seed, bugs=bugs)
        await mesh.intents.create_table()
        # Writes a dead process left in flight go to the DLQ; its replay resolves them.
        await mesh.intents.park_orphans(mesh.dlq)
        await mesh.idempotency.prune(KEY_RETENTION_SECONDS)
        await mesh.dlq.prune(REPLAYED_RETENTION_SECONDS)
        return mesh

    # -- connectors -------------------------------------------------------------------------------
    def add_connector(
        self,
        descriptor: ConnectorDescriptor,
        *,
        rate_policy: RatePolicy | None = None,
        network: NetworkProfile | None = None,
        mappings: dict[str, dict[str, str]] | None = None,
        profile: AamProfile | None = None,
    ) -> ConnectorInstance:
        """Create the connector ``descriptor.connector_id`` (replacing none: ids are unique)."""
        connector_id = descriptor.connector_id
        if connector_id in self._connectors:
            raise ValueError(f"connector {connector_id} already exists")
        connector = ConnectorInstance(
            descriptor=descriptor,
            profile=profile or self.profile,
            rate_policy=rate_policy or RatePolicy.from_descriptor(descriptor),
            network=network or NetworkProfile(),
            calllog=self.calllog,
            idempotency=self.idempotency,
            dlq=self.dlq,
            intents=self.intents,
            mappings=mappings,
            seed=self.seed,
            bugs=self.bugs,
        )
        self._connectors[connector_id] = connector
        self._dlq_changed(connector_id)  # entries left by an earlier process count from the start
        return connector

    def connector(self, connector_id: str) -> ConnectorInstance:
        """The connector with this id (``KeyError`` if none)."""
        return self._connectors[connector_id]

    @property
    def connectors(self) -> dict[str, ConnectorInstance]:
        """Every connector, by id."""
        return dict(self._connectors)

    # -- the AAM-under-test contract --------------------------------------------------------------
    async def put_connector(self, descriptor: ConnectorDescriptor) -> None:
        """Create or replace a connector (a replaced one is closed first)."""
        old = self._connectors.pop(descriptor.connector_id, None)
        if old is not None:
            await old.aclose()
        self.add_connector(descriptor)

    async def drop_connectors(self) -> None:
        """Close and forget every connector (parked writes stay in the DLQ)."""
        connectors = list(self._connectors.values())
        self._connectors.clear()
        await asyncio.gather(*(c.aclose() for c in connectors))

    async def call(self, operation: Operation) -> Outcome:
        """Run one operation; every failure the AAM classifies comes back as an outcome."""
        connector = self._connectors.get(operation.connector_id)
        if connector is None:
            return Outcome.failure(
                "client_error", f"no connector {operation.connector_id!r}; PUT it first"
            )
        try:
            if operation.deadline_ms is None:
                return await self._run(connector, operation)
            async with asyncio.timeout(operation.deadline_ms / 1000):
                return await self._run(connector, operation)
        except AamError as exc:
            return Outcome.failure(exc.error_class, str(exc), deferred=exc.deferred)
        except TimeoutError:
            return Outcome.failure(
                "timeout", f"deadline of {operation.deadline_ms} ms passed", deferred=False
            )

    async def _run(self, connector: ConnectorInstance, op: Operation) -> Outcome:
        if op.method == "POST":
            assert op.body is not None  # the Operation model guarantees it
            data = await connector.post(op.path, op.body, operation_id=op.operation_id)
            return Outcome.model_construct(ok=True, data=data, records=None, deferred=False)
        if op.paginate:
            records: list[Any] = []
            async for record in connector.paginate(op.path, op.params, require=op.require):
                records.append(record)
                if op.max_records is not None and len(records) >= op.max_records:
                    break
            return Outcome.model_construct(ok=True, data=None, records=records, deferred=False)
        data = await connector.get(op.path, op.params, require=op.require)
        return Outcome.model_construct(ok=True, data=data, records=None, deferred=False)

    async def replay_dlq(self) -> ReplayCounts:
        """Replay the parked writes once; ``pending`` counts what still waits afterwards."""
        report = await self.dlq.replay()
        waiting = {PENDING, REPLAYING, FAILED}
        pending = sum(1 for e in await self.dlq.list() if e.status in waiting)
        return ReplayCounts(replayed=report.replayed, failed=report.failed, pending=pending)

    def diagnostics(self, connector_id: str) -> dict[str, Any] | None:
        """The connector's own figures (``ConnectorStats``) as a dict; ``None`` if unknown."""
        connector = self._connectors.get(connector_id)
        return None if connector is None else stats_dict(connector.stats())

    async def aclose(self) -> None:
        """Same as :meth:`close` (the contract's name)."""
        await self.close()

    # -- calls ------------------------------------------------------------------------------------
    async def aam_get(
        self,
        connector_id: str,
        path: str,
        params: Any = None,
        *,
        require: Iterable[str] | None = None,
    ) -> Any:
        """GET through the connector; see :meth:`ConnectorInstance.get`."""
        return await self._connectors[connector_id].get(path, params, require=require)

    async def aam_post(
        self,
        connector_id: str,
        path: str,
        json_body: dict[str, Any],
        idempotency_key: str | None = None,
        *,
        operation_id: str | None = None,
    ) -> dict[str, Any]:
        """POST through the connector; see :meth:`ConnectorInstance.post`."""
        return await self._connectors[connector_id].post(
            path, json_body, idempotency_key, operation_id=operation_id
        )

    async def paginate(
        self,
        connector_id: str,
        path: str,
        params: Any = None,
        *,
        require: Iterable[str] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every record of a paginated collection."""
        async for record in self._connectors[connector_id].paginate(path, params, require=require):
            yield record

    # -- lifecycle --------------------------------------------------------------------------------
    async def flush(self) -> None:
        """Write the queued call-log rows and drift events now."""
        await self.calllog.flush()

    async def close(self) -> None:
        """Flush the call log, close every connector and the database."""
        if self._closed:
            return
        self._closed = True
        self.intents.release()
        for task in list(self._depth_tasks):
            task.cancel()
        await asyncio.gather(*self._depth_tasks, return_exceptions=True)
        await asyncio.gather(*(c.aclose() for c in self._connectors.values()))
        await self.calllog.close()
        await self.store.close()

    async def __aenter__(self) -> Mesh:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- DLQ plumbing -----------------------------------------------------------------------------
    async def _replay_one(self, entry: DlqEntry) -> Any:
        connector = self._connectors[entry.connector_id]  # KeyError: the DLQ skips the entry
        key = None if self.bugs.replay_without_key else entry.idempotency_key
        return await connector.post(entry.path, entry.payload, key, dead_letter=False)

    def _dlq_changed(self, connector_id: str) -> None:
        connector = self._connectors.get(connector_id)
        if connector is None or self._closed:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # built outside a loop: the gauge is set on the next DLQ change
        task = asyncio.ensure_future(self._refresh_depth(connector))
        self._depth_tasks.add(task)
        task.add_done_callback(self._depth_tasks.discard)

    async def _refresh_depth(self, connector: ConnectorInstance) -> None:
        connector.metrics.dlq_depth.set(await self.dlq.depth(connector.id))
