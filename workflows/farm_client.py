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


class FarmBusy(FarmError):
    """Another run holds the farm's lease (409 ``farm_leased``)."""

    def __init__(self, url: str, lease: dict[str, Any]) -> None:
        self.url = url
        self.lease = lease
        holder = lease.get("holder", "?")
        expires_in = float(lease.get("expires_in") or 0)
        super().__init__(
            f"farm {url} is busy: leased by {holder} for another {expires_in:.0f} s "
            "(wait with --wait, or run against another farm)"
        )


class LeaseLost(FarmError):
    """The farm does not know the lease any more (it expired, or the farm restarted)."""


#: Response headers every admin answer carries (``farm/README.md``).
IDENTITY_HEADERS = {
    "boot_id": "x-farm-boot-id",
    "epoch": "x-farm-epoch",
    "ledger_seq": "x-farm-ledger-seq",
    "attempt_seq": "x-farm-attempt-seq",
}


class FarmClient:
    """Admin client for one farm URL."""

    def __init__(self, url: str, admin_token: str | None, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)
        #: The lease this client holds (sent with chaos and reset as ``X-Farm-Lease``).
        self.lease_id: str | None = None
        #: Boot id, epoch and sequence numbers of the farm's latest admin answer.
        self.identity: dict[str, Any] = {}

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        if self.lease_id is not None:
            kwargs.setdefault("headers", {})["X-Farm-Lease"] = self.lease_id
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise FarmError(
                f"farm {self.url} unreachable ({method} {path}): {exc!r}; is a farm serving there?"
            ) from exc
        boot = response.headers.get(IDENTITY_HEADERS["boot_id"])
        if boot is not None:
            self.identity = {
                name: response.headers.get(header) if name == "boot_id" else
                int(response.headers.get(header) or 0)
                for name, header in IDENTITY_HEADERS.items()
            }  # fmt: skip
        if response.status_code == 409 and path.startswith(("/admin/lease", "/admin/chaos",
                                                            "/admin/reset")):  # fmt: skip
            body = _json_or_empty(response)
            if body.get("error") == "farm_leased":
                raise FarmBusy(self.url, body.get("lease") or {})
        if response.status_code == 404 and path.startswith("/admin/lease/"):
            raise LeaseLost(f"farm {self.url} no longer knows this run's lease")
        if response.status_code >= 400:
            reason = response.text[:300]
            raise FarmError(
                f"farm {self.url} answered {method} {path} with {response.status_code}: {reason}"
            )
        return response.json()

    async def acquire_lease(self, holder: str, ttl: float) -> dict[str, Any]:
        """``POST /admin/lease``; :class:`FarmBusy` when someone else holds the farm."""
        data = await self._call("POST", "/admin/lease", json={"holder": holder, "ttl_seconds": ttl})
        self.lease_id = str(data["lease_id"])
        return dict(data)

    async def renew_lease(self, ttl: float) -> dict[str, Any]:
        """``PUT /admin/lease/{id}``; :class:`FarmError` if the lease is gone (expired, or the
        farm restarted)."""
        if self.lease_id is None:
            raise FarmError(f"farm {self.url}: no lease to renew")
        return dict(
            await self._call("PUT", f"/admin/lease/{self.lease_id}", json={"ttl_seconds": ttl})
        )

    async def release_lease(self) -> None:
        """``DELETE /admin/lease/{id}`` (nothing if no lease is held)."""
        if self.lease_id is None:
            return
        lease_id, self.lease_id = self.lease_id, None
        await self._call("DELETE", f"/admin/lease/{lease_id}")

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

    async def schedule_outage(
        self,
        service: str,
        tenant: str | None,
        at_seconds: float,
        duration_seconds: float,
        methods: list[str] | None = None,
    ) -> dict[str, Any]:
        """``POST /admin/outages``: a full outage at a fixed time after the last reset."""
        body: dict[str, Any] = {
            "service": service,
            "at_seconds": at_seconds,
            "duration_seconds": duration_seconds,
        }
        if tenant is not None:
            body["tenant"] = tenant
        if methods:
            body["methods"] = methods
        return await self._call("POST", "/admin/outages", json=body)

    async def reset(self, seed: int | None = None) -> None:
        """``POST /admin/reset``: counters, ledger, drift clock and chaos back to start."""
        await self._call("POST", "/admin/reset", json={} if seed is None else {"seed": seed})

    async def ledger(self, service: str | None = None) -> dict[str, Any]:
        """``GET /admin/ledger``: the ground truth of committed writes, faults and drift."""
        params = {"service": service} if service else None
        return await self._call("GET", "/admin/ledger", params=params)

    async def attempts(self) -> list[dict[str, Any]]:
        """``GET /admin/attempts``: every attempt the farm answered since its last reset, oldest
        first (paged by sequence number)."""
        rows: list[dict[str, Any]] = []
        since = 0
        for _ in range(100_000):  # bounded: a billion attempts is far beyond any run
            page = await self._call(
                "GET", "/admin/attempts", params={"since_seq": since, "limit": 10_000}
            )
            batch = page.get("attempts", []) if isinstance(page, dict) else []
            rows += batch
            nxt = page.get("next_since_seq") if isinstance(page, dict) else None
            if not batch or nxt is None:
                break
            since = int(nxt)
        return rows

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

    async def record_versions(
        self, service: str, resource: str, tenant: str
    ) -> dict[str, list[dict[str, Any]]]:
        """Every version of every record that changed during the run (living data): record id
        -> ``[{"version", "since", "record"}, ...]`` oldest first."""
        data = await self._call(
            "GET", f"/admin/records/{service}/{resource}/versions", params={"tenant": tenant}
        )
        changed = data.get("records", {}) if isinstance(data, dict) else None
        if not isinstance(changed, dict):
            raise FarmError(f"farm {self.url}: /admin/records/.../versions answered no records")
        return changed


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


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
