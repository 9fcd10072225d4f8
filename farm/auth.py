"""Who is calling: OAuth2 access tokens (TTL, rotation by call count) and API keys.

:class:`TokenStore` issues and checks bearer tokens; :class:`Authenticator` turns a data request's
headers into the tenant it acts as, or a refusal (401 for a missing/unknown/expired/rotated
credential, 403 for a valid credential that belongs to another tenant or service).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from farm.clock import Clock
from farm.credentials import CredentialBook, TenantCredentials
from farm.spec import AuthType, ServiceSpec

#: Expired tokens are remembered this long (at least) so a late caller hears "expired", not
#: "unknown"; after that they are swept to keep the store bounded.
EXPIRED_GRACE_SECONDS = 300.0
SWEEP_EVERY_ISSUES = 1024


@dataclass(slots=True)
class IssuedToken:
    """One access token: whose it is, when it expires, how many data calls it has left."""

    service: str
    tenant: str
    expires_at: float
    calls_left: int | None
    credential: str = ""  # a non-secret id for the attempt log: "<client_id>#<serial>"


#: Module constants: an enum member looked up on its class costs ~0.1 µs per data request.
_OAUTH2, _API_KEY = AuthType.oauth2_client_credentials, AuthType.api_key


class TokenStore:
    """Access tokens by value. Issuing a new token does not revoke older ones."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._tokens: dict[str, IssuedToken] = {}
        self._issued_since_sweep = 0
        self._serial = 0

    def __len__(self) -> int:
        return len(self._tokens)

    def issue(self, creds: TenantCredentials, ttl_seconds: float, calls: int | None) -> str:
        """A fresh bearer token for ``creds``' tenant, valid ``ttl_seconds`` and ``calls`` calls."""
        self._issued_since_sweep += 1
        if self._issued_since_sweep >= SWEEP_EVERY_ISSUES:
            self.sweep()
        token = secrets.token_urlsafe(24)
        self._serial += 1
        self._tokens[token] = IssuedToken(
            creds.service,
            creds.tenant,
            self._clock.now() + ttl_seconds,
            calls,
            f"{creds.client_id}#{self._serial}",
        )
        return token

    def get(self, token: str) -> IssuedToken | None:
        """The record of ``token`` (valid or not), ``None`` if never issued (or long swept)."""
        return self._tokens.get(token)

    def problem(self, issued: IssuedToken) -> str | None:
        """Why ``issued`` cannot be used now: ``"expired"``, ``"rotated"`` or ``None`` (usable)."""
        if self._clock.now() >= issued.expires_at:
            return "expired"
        if issued.calls_left is not None and issued.calls_left <= 0:
            return "rotated"
        return None

    def sweep(self) -> None:
        """Forget tokens that expired more than the grace period ago."""
        self._issued_since_sweep = 0
        cutoff = self._clock.now() - EXPIRED_GRACE_SECONDS
        self._tokens = {k: v for k, v in self._tokens.items() if v.expires_at > cutoff}

    def clear(self) -> None:
        """Forget every token (admin reset)."""
        self._tokens.clear()


@dataclass(frozen=True, slots=True)
class AuthFailure:
    """A refused data request: status, reason and the tenant it can be pinned on (if any)."""

    status: int
    reason: str  # missing | unknown | expired | rotated | wrong_tenant
    tenant: str | None = None


class Authenticator:
    """The auth step: request headers -> the tenant, or an :class:`AuthFailure`."""

    def __init__(self, book: CredentialBook, tokens: TokenStore, specs: list[ServiceSpec]) -> None:
        self._book = book
        self._tokens = tokens
        # Every API-key header name any service uses, to recognise another service's key.
        self._key_headers = sorted(
            {
                s.auth.api_key_header.lower().encode()
                for s in specs
                if s.auth.type is AuthType.api_key
            }
        )

    def authenticate(
        self, spec: ServiceSpec, headers: dict[bytes, bytes]
    ) -> tuple[str | None, AuthFailure | None, str | None]:
        """Resolve the calling tenant of a data request to ``spec``'s service: (tenant, failure,
        the non-secret id of the credential when it was accepted — the attempt log's)."""
        kind = spec.auth.type
        if kind is _OAUTH2:
            tenant, failure, credential = self._by_token(spec, headers)
        elif kind is _API_KEY:
            tenant, failure, credential = self._by_api_key(spec, headers)
        else:
            claimed = headers.get(b"x-tenant-id")
            tenant = claimed.decode("latin-1") if claimed else spec.tenants[0].id
            if tenant not in {t.id for t in spec.tenants}:
                return None, AuthFailure(403, "wrong_tenant"), None
            return tenant, None, None
        if failure is not None:
            return None, failure, None
        assert tenant is not None
        claimed = headers.get(b"x-tenant-id")
        if claimed is not None and claimed.decode("latin-1") != tenant:
            return None, AuthFailure(403, "wrong_tenant", tenant), None
        return tenant, None, credential

    def _by_token(
        self, spec: ServiceSpec, headers: dict[bytes, bytes]
    ) -> tuple[str | None, AuthFailure | None, str | None]:
        token = _bearer(headers)
        if token is None:
            if self._foreign_api_key(headers) is not None:
                return None, AuthFailure(403, "wrong_tenant"), None
            return None, AuthFailure(401, "missing"), None
        issued = self._tokens.get(token)
        if issued is None:
            return None, AuthFailure(401, "unknown"), None
        problem = self._tokens.problem(issued)
        mine = issued.service == spec.id
        if problem is not None:
            return None, AuthFailure(401, problem, issued.tenant if mine else None), None
        if not mine:
            return None, AuthFailure(403, "wrong_tenant"), None
        if issued.calls_left is not None:
            issued.calls_left -= 1
        return issued.tenant, None, issued.credential

    def _by_api_key(
        self, spec: ServiceSpec, headers: dict[bytes, bytes]
    ) -> tuple[str | None, AuthFailure | None, str | None]:
        raw = headers.get(spec.auth.api_key_header.lower().encode())
        if raw is None:
            foreign = self._foreign_api_key(headers)
            token = _bearer(headers)
            issued = self._tokens.get(token) if token else None
            if foreign is not None or (issued is not None and self._tokens.problem(issued) is None):
                return None, AuthFailure(403, "wrong_tenant"), None
            return None, AuthFailure(401, "missing"), None
        creds = self._book.by_api_key.get(raw.decode("latin-1"))
        if creds is None:
            return None, AuthFailure(401, "unknown"), None
        if creds.service != spec.id:
            return None, AuthFailure(403, "wrong_tenant"), None
        return creds.tenant, None, f"api_key:{creds.service}:{creds.tenant}"

    def _foreign_api_key(self, headers: dict[bytes, bytes]) -> TenantCredentials | None:
        for name in self._key_headers:
            raw = headers.get(name)
            if raw is not None:
                creds = self._book.by_api_key.get(raw.decode("latin-1"))
                if creds is not None:
                    return creds
        return None


def _bearer(headers: dict[bytes, bytes]) -> str | None:
    value = headers.get(b"authorization")
    if not value:
        return None
    token = _BEARERS.get(value)
    if token is None:  # parsed once per distinct header value (a client sends one many times)
        token = _parse_bearer(value)
        if len(_BEARERS) >= MAX_PARSED_BEARERS:
            _BEARERS.clear()
        _BEARERS[value] = token
    return token or None


def _parse_bearer(value: bytes) -> str:
    """The token of ``Authorization: Bearer <token>``; ``""`` for any other value."""
    scheme, _, token = value.decode("latin-1").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return ""
    return token


#: Authorization header value -> its bearer token ("" if none): a pure function of the value,
#: so caching it changes nothing but the cost; bounded by clearing when full.
_BEARERS: dict[bytes, str] = {}
MAX_PARSED_BEARERS = 4096
