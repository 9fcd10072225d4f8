"""What a workflow holds: one AAM connector plus the run's journal and the farm's ground truth.

A workflow is ``async def workflow(connector: ConnectorHandle, **params) -> dict`` and talks to
the API only through the AAM (``get`` / ``post`` / ``paginate`` delegate to the mesh).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from farm.spec import HttpMethod, Resource, ServiceSpec
from workflows.farm_client import FarmClient
from workflows.journal import RunJournal


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


@dataclass
class ConnectorHandle:
    """One (service, tenant) connector as a workflow sees it."""

    mesh: Any  # aam.Mesh (typed loosely: the runner is the only place that builds one)
    id: str
    spec: ServiceSpec
    tenant: str
    journal: RunJournal
    truth: GroundTruth
    run_id: str
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def service(self) -> str:
        return self.spec.id

    def collection_path(self, resource: Resource) -> str:
        """Full path of a resource's collection (base path included)."""
        for endpoint in resource.endpoints:
            if not endpoint.is_item:
                return self.spec.base_path + endpoint.path
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

    async def get(
        self, path: str, params: dict[str, Any] | None = None, *, require: list[str] | None = None
    ) -> dict[str, Any]:
        """One GET through the AAM."""
        return await self.mesh.aam_get(self.id, path, params, require=require)

    async def post(self, path: str, body: dict[str, Any], *, operation_id: str) -> dict[str, Any]:
        """One idempotent POST through the AAM (key derived from the operation id)."""
        return await self.mesh.aam_post(self.id, path, body, operation_id=operation_id)

    def paginate(
        self, path: str, params: dict[str, Any] | None = None, *, require: list[str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Follow ``next`` links through the AAM, yielding records."""
        return self.mesh.paginate(self.id, path, params, require=require)
