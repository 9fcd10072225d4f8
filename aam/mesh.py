"""``Mesh``: the AAM's front door — connectors by id, shared stores, one lifecycle.

```python
mesh = await Mesh.open(state_dir=Path("var/aam"), profile=AamProfile.parse("full"))
mesh.add_connector(spec, "acme", TenantCredentials(api_key=...), base_url="http://127.0.0.1:8001")
page = await mesh.aam_get("stripe:acme", "/stripe/v1/invoices", {"limit": 50})
await mesh.close()
```
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from aam.calllog import CallLog, Retention
from aam.connector import ConnectorInstance
from aam.credentials import TenantCredentials
from aam.dlq import DeadLetterQueue, DlqEntry
from aam.idempotency import IdempotencyStore
from aam.policy import RatePolicy
from aam.profile import AamProfile
from aam.store import StateStore
from aam.transport import NetworkProfile
from farm.spec import ServiceSpec

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
    ) -> None:
        self.store = store
        self.profile = profile
        self.calllog = calllog
        self.seed = seed
        self.idempotency = IdempotencyStore(store)
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
        mesh = cls(store, profile or AamProfile(), calllog, seed=seed)
        await mesh.idempotency.prune(KEY_RETENTION_SECONDS)
        await mesh.dlq.prune(REPLAYED_RETENTION_SECONDS)
        return mesh

    # -- connectors -------------------------------------------------------------------------------
    def add_connector(
        self,
        spec: ServiceSpec,
        tenant: str,
        credentials: TenantCredentials,
        *,
        base_url: str,
        rate_policy: RatePolicy | None = None,
        network: NetworkProfile | None = None,
        mappings: dict[str, dict[str, str]] | None = None,
        profile: AamProfile | None = None,
    ) -> ConnectorInstance:
        """Create the connector ``"{spec.id}:{tenant}"`` (replacing none: ids are unique)."""
        spec.tenant(tenant)  # KeyError for a tenant the service does not have
        connector_id = f"{spec.id}:{tenant}"
        if connector_id in self._connectors:
            raise ValueError(f"connector {connector_id} already exists")
        connector = ConnectorInstance(
            spec=spec,
            tenant=tenant,
            credentials=credentials,
            base_url=base_url,
            profile=profile or self.profile,
            rate_policy=rate_policy or RatePolicy.from_spec(spec, tenant),
            network=network or NetworkProfile(),
            calllog=self.calllog,
            idempotency=self.idempotency,
            dlq=self.dlq,
            mappings=mappings,
            seed=self.seed,
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
        return await connector.post(
            entry.path, entry.payload, entry.idempotency_key, dead_letter=False
        )

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
