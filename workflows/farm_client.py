"""The runner's view of the farm: its admin API (chaos, reset, ledger, status, ground truth).

One farm may serve every service (embedded), or each service may have its own farm
(Kubernetes: one Deployment per ``SyntheticService``). :class:`FarmSet` hides the difference:
callers ask per service, and whole-farm operations fan out once per distinct farm URL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx


class FarmError(Exception):
    """The farm could not be reached or answered an admin call with an error."""


class FarmClient:
    """Admin client for one farm URL."""

    def __init__(self, url: str, admin_token: str | None, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise FarmError(
                f"farm {self.url} unreachable ({method} {path}): {exc!r}; is a farm serving there?"
            ) from exc
        if response.status_code >= 400:
            reason = response.text[:300]
            raise FarmError(
                f"farm {self.url} answered {method} {path} with {response.status_code}: {reason}"
            )
        return response.json()

    async def health(self) -> dict[str, Any]:
        """``GET /healthz`` (no auth)."""
        return await self._call("GET", "/healthz")

    async def status(self) -> dict[str, Any]:
        """``GET /admin/status``: live counters per service and tenant."""
        return await self._call("GET", "/admin/status")

    async def set_chaos(self, level: str, service: str | None = None) -> None:
        """``POST /admin/chaos``: set the chaos level for the whole farm or one service."""
        body: dict[str, Any] = {"level": level}
        if service:
            body["service"] = service
        await self._call("POST", "/admin/chaos", json=body)

    async def reset(self, seed: int | None = None) -> None:
        """``POST /admin/reset``: counters, ledger, drift clock and chaos back to start."""
        await self._call("POST", "/admin/reset", json={} if seed is None else {"seed": seed})

    async def ledger(self, service: str | None = None) -> dict[str, Any]:
        """``GET /admin/ledger``: the ground truth of committed writes, faults and drift."""
        params = {"service": service} if service else None
        return await self._call("GET", "/admin/ledger", params=params)

    async def credentials(self) -> dict[str, Any]:
        """``GET /admin/credentials``: service -> tenant -> credential fields."""
        data = await self._call("GET", "/admin/credentials")
        return data.get("services", {})

    async def records(
        self, service: str, resource: str, tenant: str, *, offset: int = 0, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Canonical (version-1 shape) ground-truth records of one tenant's resource."""
        data = await self._call(
            "GET",
            f"/admin/records/{service}/{resource}",
            params={"tenant": tenant, "offset": offset, "limit": limit},
        )
        records = data.get("data", []) if isinstance(data, dict) else data
        if not isinstance(records, list):
            raise FarmError(f"farm {self.url}: /admin/records answered no record list")
        return records


class FarmSet:
    """Every farm a scenario talks to, addressed by service id."""

    def __init__(self, urls: Mapping[str, str], admin_token: str | None) -> None:
        if not urls:
            raise ValueError("no farm URL given")
        self.urls = {service: url.rstrip("/") for service, url in urls.items()}
        self._clients = {url: FarmClient(url, admin_token) for url in set(self.urls.values())}
        # "*" means "the farm for any service not named": one embedded farm serves all.
        self._default = self.urls.get("*")

    def url_for(self, service: str) -> str:
        """The base URL serving ``service``."""
        url = self.urls.get(service, self._default)
        if url is None:
            raise FarmError(f"no farm URL for service {service!r} (give --service-url)")
        return url

    def client(self, service: str) -> FarmClient:
        """The admin client of the farm serving ``service``."""
        return self._clients[self.url_for(service)]

    def clients_for(self, services: list[str]) -> list[FarmClient]:
        """The distinct farms serving ``services``, each once."""
        seen: dict[str, FarmClient] = {}
        for service in services:
            url = self.url_for(service)
            seen[url] = self._clients[url]
        return list(seen.values())

    def by_url(self) -> dict[str, FarmClient]:
        """Every distinct farm, by its base URL."""
        return dict(self._clients)

    async def close(self) -> None:
        """Close every client."""
        await asyncio.gather(*(c.close() for c in self._clients.values()))
