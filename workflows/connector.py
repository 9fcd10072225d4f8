"""What a workflow holds: one connector of the AAM under test, the run's journal and the farm's
ground truth.

A workflow is ``async def workflow(connector: ConnectorHandle, **params) -> dict`` and talks to
the API only through the AAM: ``get`` / ``post`` / ``paginate`` become contract operations
(:class:`aam.contract.Operation`) sent to the :class:`aam.contract.AamUnderTest`, and a failed
outcome is raised as the :mod:`aam.errors` leaf of its error class. Paths are relative to the
connector's ``base_url`` (the descriptor's), as the contract says. The handle also keeps the
runner's own figures for the connector (logical calls, outcomes, latency): the judge never needs
the AAM's word for them.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from aam.contract import AamUnderTest, Operation, Outcome
from aam.errors import AamError, error_type
from farm.spec import HttpMethod, Resource, ServiceSpec
from workflows.evidence import OP_PARAM, OperationKind
from workflows.evidence import Operation as Observed
from workflows.farm_client import FarmClient
from workflows.journal import RunJournal

#: Keep this many recent successful-call latencies per connector (bounded memory).
LATENCY_SAMPLE = 20_000


class WorkflowConfigError(ValueError):
    """A workflow cannot run against a connector (e.g. the service has no writable resource)."""


class GroundTruth:
    """Canonical (version-1) records from the farm's admin API, fetched once per resource."""

    def __init__(self, farm: FarmClient) -> None:
        self._farm = farm
        self._cache: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}

    async def records(self, service: str, resource: str, tenant: str) -> dict[str, dict[str, Any]]:
        """Record id -> canonical record for one tenant's resource."""
        key = (service, resource, tenant)
        if key not in self._cache:
            out: dict[str, dict[str, Any]] = {}
            offset, limit = 0, 1000
            for _ in range(1000):  # bounded: a million records is far beyond any spec here
                page = await self._farm.records(
                    service, resource, tenant, offset=offset, limit=limit
                )
                for record in page:
                    out[str(record.get("id"))] = record
                if len(page) < limit:
                    break
                offset += limit
            self._cache[key] = out
        return self._cache[key]

    async def versions(
        self, service: str, resource: str, tenant: str
    ) -> dict[str, list[dict[str, Any]]]:
        """Every version of the records that changed so far (never cached: data is living)."""
        return await self._farm.record_versions(service, resource, tenant)


@dataclass
class CallFigures:
    """The runner's own count of one connector's logical operations (what it asked, what came
    back), independent of anything the AAM reports about itself."""

    calls: int = 0
    successes: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    deferred: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLE))

    def percentile(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "successes": self.successes,
            "failures": dict(self.failures),
            "deferred": self.deferred,
        }


def raise_for(outcome: Outcome, operation: Operation) -> None:
    """Raise the :mod:`aam.errors` leaf of a failed outcome (``deferred`` carried over)."""
    if outcome.ok:
        return
    cls = error_type(outcome.error_class or "client_error")
    where = f"{operation.method} {operation.path}"
    error: AamError = cls(f"{where}: {outcome.message or outcome.error_class}")
    error.connector_id = operation.connector_id
    error.deferred = outcome.deferred
    raise error


@dataclass
class ConnectorHandle:
    """One (service, tenant) connector as a workflow sees it."""

    aam: AamUnderTest
    id: str
    spec: ServiceSpec
    tenant: str
    journal: RunJournal
    truth: GroundTruth
    run_id: str
    state: dict[str, Any] = field(default_factory=dict)
    figures: CallFigures = field(default_factory=CallFigures)
    #: The workflow driving this copy (set per copy by the runner; names journal entries).
    workflow: str = ""

    @property
    def service(self) -> str:
        return self.spec.id

    def collection_path(self, resource: Resource) -> str:
        """A resource's collection path, relative to the connector's base URL."""
        for endpoint in resource.endpoints:
            if not endpoint.is_item:
                return endpoint.path
        raise WorkflowConfigError(f"{self.spec.id}: resource {resource.name} has no collection")

    def paginated_resources(self) -> list[Resource]:
        """Resources with a paginated GET."""
        return [r for r in self.spec.resources if any(e.paginated for e in r.endpoints)]

    def writable_resources(self) -> list[Resource]:
        """Resources with a POST and a lookup field (so issued writes can be matched)."""
        return [
            r
            for r in self.spec.resources
            if r.lookup_field and any(e.method is HttpMethod.POST for e in r.endpoints)
        ]

    def v1_fields(self, resource: str) -> dict[str, str]:
        """Field name -> kind in the resource's version-1 schema."""
        return dict(self.spec.schema_.fields[resource])

    async def call(
        self,
        operation: Operation,
        kind: OperationKind,
        *,
        resource: str | None = None,
        full_scan: bool = False,
        lookup_value: str | None = None,
    ) -> Outcome:
        """Send one operation to the AAM; count it, and journal what was asked and what came
        back (the judge's evidence: records received, the body asked for, the outcome)."""
        observed = self.journal.begin(
            kind,
            workflow=self.workflow,
            connector=self.id,
            service=self.service,
            tenant=self.tenant,
            resource=resource,
            op_id=operation.operation_id or str((operation.params or {}).get(OP_PARAM, "")),
            require=operation.require or (),
            full_scan=full_scan,
            max_records=operation.max_records,
            body=dict(operation.body) if operation.body is not None else None,
            lookup_value=lookup_value,
        )
        started = time.perf_counter()
        try:
            outcome = await self.aam.call(operation)
        except asyncio.CancelledError:
            # Left pending: the runner decides whether the AAM hung (past the operation
            # deadline: a failure) or the run simply ended (not judged).
            raise
        except BaseException:
            self.journal.finish(observed, "failed", error_class="unclassified")
            raise
        self._journal(observed, outcome)
        f = self.figures
        f.calls += 1
        if outcome.ok:
            f.successes += 1
            f.latencies.append(time.perf_counter() - started)
        else:
            f.failures[outcome.error_class or "client_error"] += 1
            if outcome.deferred:
                f.deferred += 1
        return outcome

    def _journal(self, observed: Observed, outcome: Outcome) -> None:
        if not outcome.ok:
            self.journal.finish(
                observed,
                "deferred" if outcome.deferred else "failed",
                error_class=outcome.error_class,
            )
            return
        if outcome.records is not None:
            records = outcome.records
        elif isinstance(outcome.data, dict) and isinstance(outcome.data.get("data"), list):
            records = outcome.data["data"]
        elif isinstance(outcome.data, dict) and observed.kind == "get":
            records = [outcome.data]
        else:
            records = []
        kept = [r for r in records if isinstance(r, dict)] if observed.kind != "write" else []
        self.journal.finish(observed, "ok", records=kept)

    def _marked(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """The parameters with a fresh ``gauntlet_op`` marker: the farm ignores it, keeps it in
        ``next`` links and records it, so the judge can tie every attempt to this operation."""
        marker = self.journal.next_operation_id(f"{self.run_id}-op")
        return {**(params or {}), OP_PARAM: marker}

    async def get(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        require: list[str] | None = None,
        resource: str | None = None,
    ) -> Any:
        """One GET through the AAM (an item or one page); the body (records in v1 names)."""
        op = Operation(
            connector_id=self.id,
            method="GET",
            path=path,
            params=self._marked(params),
            require=require,
        )
        outcome = await self.call(op, "get", resource=resource)
        raise_for(outcome, op)
        return outcome.data

    async def post(
        self,
        path: str,
        body: dict[str, Any],
        *,
        operation_id: str,
        resource: str | None = None,
        lookup_value: str | None = None,
    ) -> Any:
        """One logical write through the AAM (the operation id names it on every attempt; its
        lookup value ties it to the farm's ledger)."""
        op = Operation(
            connector_id=self.id, method="POST", path=path, body=body, operation_id=operation_id
        )
        outcome = await self.call(
            op, "write", resource=resource, lookup_value=lookup_value or operation_id
        )
        raise_for(outcome, op)
        return outcome.data

    async def scan(
        self,
        path: str,
        *,
        resource: str,
        require: list[str] | None = None,
        max_records: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """One paginate operation (the AAM follows ``next`` links): every record of the
        collection (``max_records=None``, judged for completeness) or the first ``max_records``."""
        op = Operation(
            connector_id=self.id,
            method="GET",
            path=path,
            params=self._marked(params),
            paginate=True,
            max_records=max_records,
            require=require,
        )
        outcome = await self.call(op, "scan", resource=resource, full_scan=max_records is None)
        raise_for(outcome, op)
        return [r for r in outcome.records or [] if isinstance(r, dict)]
