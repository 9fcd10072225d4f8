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

import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aam.contract import AamUnderTest, Operation, Outcome
from aam.errors import AamError, error_type
from farm.spec import HttpMethod, Resource, ServiceSpec
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

    async def call(self, operation: Operation) -> Outcome:
        """Send one operation to the AAM and count what came back."""
        started = time.perf_counter()
        outcome = await self.aam.call(operation)
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

    async def get(
        self, path: str, params: dict[str, Any] | None = None, *, require: list[str] | None = None
    ) -> Any:
        """One GET through the AAM; the body (records in v1 field names)."""
        op = Operation(
            connector_id=self.id, method="GET", path=path, params=params, require=require
        )
        outcome = await self.call(op)
        raise_for(outcome, op)
        return outcome.data

    async def post(self, path: str, body: dict[str, Any], *, operation_id: str) -> Any:
        """One logical write through the AAM (the operation id names it on every attempt)."""
        op = Operation(
            connector_id=self.id, method="POST", path=path, body=body, operation_id=operation_id
        )
        outcome = await self.call(op)
        raise_for(outcome, op)
        return outcome.data

    async def paginate(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        require: list[str] | None = None,
        max_records: int | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """One paginate operation (the AAM follows ``next`` links); yields its records."""
        op = Operation(
            connector_id=self.id,
            method="GET",
            path=path,
            params=params,
            paginate=True,
            max_records=max_records,
            require=require,
        )
        outcome = await self.call(op)
        raise_for(outcome, op)
        for record in outcome.records or []:
            if isinstance(record, dict):
                yield record
