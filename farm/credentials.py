"""Each (service, tenant)'s credentials: from the spec, else generated once per state dir.

Generated values come from ``secrets`` (they are secrets, not random decisions). When a state dir
is given they are written to ``credentials.json`` (mode 0600) and reused on the next start, so a
restarted farm keeps working with the credentials the runner already read.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from farm.spec import AuthType, ServiceSpec

log = logging.getLogger("farm.credentials")
TOKEN_PATH = "/oauth2/token"


@dataclass(frozen=True)
class TenantCredentials:
    """What one tenant of one service authenticates with."""

    service: str
    tenant: str
    auth_type: str
    client_id: str | None
    client_secret: str | None
    api_key: str | None
    api_key_header: str | None

    def public(self) -> dict[str, Any]:
        """The ``GET /admin/credentials`` entry (secrets included: it is an admin endpoint)."""
        out = asdict(self)
        del out["service"], out["tenant"]
        out["token_url"] = (
            TOKEN_PATH if self.auth_type == AuthType.oauth2_client_credentials.value else None
        )
        return out


class CredentialBook:
    """All credentials plus reverse indexes: who does a client id or an API key belong to."""

    def __init__(self, specs: list[ServiceSpec], state_dir: Path | None = None) -> None:
        previous = _read_previous(state_dir)
        self.by_tenant: dict[tuple[str, str], TenantCredentials] = {}
        self.by_client_id: dict[str, TenantCredentials] = {}
        self.by_api_key: dict[str, TenantCredentials] = {}
        for spec in specs:
            for tenant in spec.tenants:
                old = previous.get(spec.id, {}).get(tenant.id, {})
                creds = _credentials_for(spec, tenant.id, old)
                self._index(creds)
        if state_dir is not None:
            write_private(state_dir / "credentials.json", orjson.dumps(self.as_json()))

    def _index(self, creds: TenantCredentials) -> None:
        self.by_tenant[(creds.service, creds.tenant)] = creds
        for value, index, what in (
            (creds.client_id, self.by_client_id, "client_id"),
            (creds.api_key, self.by_api_key, "api_key"),
        ):
            if value is None:
                continue
            other = index.get(value)
            if other is not None:
                raise ValueError(
                    f"services.{creds.service}.tenants.{creds.tenant}.{what}: the same value is "
                    f"already used by {other.service}/{other.tenant}; credentials must be unique"
                )
            index[value] = creds

    def as_json(self) -> dict[str, Any]:
        """``{"services": {service: {tenant: entry}}}`` as served by ``GET /admin/credentials``."""
        services: dict[str, dict[str, Any]] = {}
        for (service, tenant), creds in self.by_tenant.items():
            services.setdefault(service, {})[tenant] = creds.public()
        return {"services": services}


def _credentials_for(spec: ServiceSpec, tenant_id: str, old: dict[str, Any]) -> TenantCredentials:
    tenant = spec.tenant(tenant_id)
    kind = spec.auth.type
    client_id = client_secret = api_key = header = None
    if kind is AuthType.oauth2_client_credentials:
        client_id = (
            tenant.client_id
            or old.get("client_id")
            or f"{spec.id}.{tenant_id}." + (secrets.token_hex(4))
        )
        client_secret = (
            tenant.client_secret or old.get("client_secret") or secrets.token_urlsafe(24)
        )
    elif kind is AuthType.api_key:
        api_key = tenant.api_key or old.get("api_key") or secrets.token_urlsafe(24)
        header = spec.auth.api_key_header
    return TenantCredentials(
        spec.id, tenant_id, kind.value, client_id, client_secret, api_key, header
    )


def _read_previous(state_dir: Path | None) -> dict[str, dict[str, dict[str, Any]]]:
    if state_dir is None:
        return {}
    path = state_dir / "credentials.json"
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, orjson.JSONDecodeError) as exc:
        log.warning("ignoring unreadable %s (%s); generating new credentials", path, exc)
        return {}
    services = data.get("services") if isinstance(data, dict) else None
    return services if isinstance(services, dict) else {}


def write_private(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` readable by the owner only (mode 0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, content)
    finally:
        os.close(fd)
    os.replace(tmp, path)
