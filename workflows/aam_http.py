"""The HTTP driver: an AAM under test reached over the contract's endpoints.

:class:`HttpAam` implements :class:`aam.contract.AamUnderTest` as a client of a user's AAM server
(``gauntlet run ... --aam-url URL [--aam-token T]``). Anything the AAM answers that is not the
contract — refused connections, a 5xx from the AAM itself, a body that is not JSON, a JSON of the
wrong shape, a wrong token — raises :class:`AamContractError` naming the call, and the runner
turns it into an ``ERROR`` verdict (exit 2): the run cannot be judged, and no traceback is shown.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from pydantic import ValidationError

from aam.contract import Operation, Outcome, ReplayCounts
from aam.descriptor import ConnectorDescriptor

PREFIX = "/gauntlet/v1"
#: One call may take this long (the AAM retries and backs off inside it); a hung AAM is an error.
CALL_TIMEOUT_SECONDS = 120.0
#: Health, connector set-up and replay.
CONTROL_TIMEOUT_SECONDS = 30.0
MAX_CONNECTIONS = 256
_HEADERS = {"content-type": "application/json", "accept": "application/json"}


class AamContractError(Exception):
    """The AAM under test broke the contract (or could not be reached) on ``call``."""

    def __init__(self, call: str, detail: str) -> None:
        super().__init__(f"{call}: {detail}")
        self.call = call
        self.detail = detail


def _snippet(body: bytes) -> str:
    text = body[:200].decode("utf-8", "replace").replace("\n", " ")
    return text + ("..." if len(body) > 200 else "")


def _shape(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        where = ".".join(str(p) for p in e.get("loc", ())) or "(body)"
        parts.append(f"{where}: {e.get('msg')}")
    return "; ".join(parts)


class HttpAam:
    """An AAM behind the HTTP contract, as an ``AamUnderTest``."""

    def __init__(self, url: str, token: str | None, session: aiohttp.ClientSession) -> None:
        self.url = url.rstrip("/")
        self._session = session
        self._headers = dict(_HEADERS)
        if token:
            self._headers["authorization"] = f"Bearer {token}"
        self._call_timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_SECONDS)
        self._control_timeout = aiohttp.ClientTimeout(total=CONTROL_TIMEOUT_SECONDS)

    @classmethod
    async def connect(cls, url: str, token: str | None = None) -> HttpAam:
        """Open a client and check ``GET /health``; raises :class:`AamContractError`."""
        if not url.startswith(("http://", "https://")):
            raise AamContractError("--aam-url", f"{url!r}: expected http://host:port")
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, keepalive_timeout=30)
        )
        aam = cls(url, token, session)
        try:
            await aam._request("GET", "/health", None, "GET /health", control=True, want_json=False)
        except BaseException:
            await session.close()
            raise
        return aam

    async def _request(
        self,
        method: str,
        path: str,
        body: Any,
        call: str,
        *,
        control: bool,
        want_json: bool = True,
    ) -> Any:
        data = orjson.dumps(body) if body is not None else None
        timeout = self._control_timeout if control else self._call_timeout
        where = f"{call} ({self.url})"
        try:
            async with self._session.request(
                method, self.url + path, data=data, headers=self._headers, timeout=timeout
            ) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, OSError) as exc:
            raise AamContractError(where, f"no answer: {type(exc).__name__}: {exc}") from None
        except TimeoutError:
            limit = timeout.total
            raise AamContractError(where, f"no answer within {limit:g} s") from None
        if status in (401, 403):
            raise AamContractError(
                where, f"HTTP {status}: the AAM refused the token (give --aam-token)"
            )
        if not 200 <= status < 300:
            raise AamContractError(where, f"HTTP {status}: {_snippet(raw)}")
        if not want_json:
            return None
        try:
            return orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            raise AamContractError(where, f"the body is not JSON: {_snippet(raw)!r}") from None

    # -- the contract ------------------------------------------------------------------------
    async def put_connector(self, descriptor: ConnectorDescriptor) -> None:
        cid = descriptor.connector_id
        path = f"{PREFIX}/connectors/{quote(cid, safe=':')}"
        body = descriptor.model_dump(mode="json", exclude_none=True)
        await self._request("PUT", path, body, f"PUT {path}", control=True, want_json=False)

    async def drop_connectors(self) -> None:
        path = f"{PREFIX}/connectors"
        await self._request("DELETE", path, None, f"DELETE {path}", control=True, want_json=False)

    async def call(self, operation: Operation) -> Outcome:
        path = f"{PREFIX}/calls"
        call = f"POST {path} ({operation.method} {operation.path} on {operation.connector_id})"
        body = operation.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        body["connector_id"] = operation.connector_id
        body["method"] = operation.method
        body["path"] = operation.path
        data = await self._request("POST", path, body, call, control=False)
        if not isinstance(data, dict):
            raise AamContractError(f"{call} ({self.url})", "the outcome is not a JSON object")
        try:
            outcome = Outcome.model_validate(data)
        except ValidationError as exc:
            raise AamContractError(
                f"{call} ({self.url})", f"not an outcome: {_shape(exc)}"
            ) from None
        if outcome.ok and operation.paginate and outcome.records is None:
            raise AamContractError(f"{call} ({self.url})", "a paginate outcome needs 'records'")
        return outcome

    async def replay_dlq(self) -> ReplayCounts:
        path = f"{PREFIX}/dlq/replay"
        data = await self._request("POST", path, None, f"POST {path}", control=True)
        try:
            return ReplayCounts.model_validate(data)
        except ValidationError as exc:
            raise AamContractError(f"POST {path} ({self.url})", _shape(exc)) from None

    def diagnostics(self, connector_id: str) -> dict[str, Any] | None:
        return None  # an external AAM's own figures are not part of the contract

    async def aclose(self) -> None:
        await self._session.close()
        await asyncio.sleep(0)  # let aiohttp close the transports
