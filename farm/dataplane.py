"""The data routes as a plain ASGI handler: read the request, run the pipeline, answer.

This is also where faults become real on the wire: a *network* fault starts a response with a
``Content-Length`` and closes the connection half-way (uvicorn closes the transport when the app
raises after the response started; the client sees a truncated body), and a *timeout* holds the
response for ``timeout_delay_seconds``. Going around FastAPI here keeps the hot path cheap (no
dependency injection, no re-encoding): the body is orjson bytes, sent as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from farm.bodycap import body_cap_refusal
from farm.chaos import FaultKind
from farm.front import reset_connection, transport_of
from farm.pipeline import JSON, Call, Pipeline, Reply, error_body, gateway_body
from farm.routes import RouteMatch
from farm.state import Farm, ServiceState

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("farm.faults")
MAX_BODY_BYTES = 1 << 20
#: What a dropped response starts to send before the connection is cut.
DROP_BODY = b'{"data": [' + b" " * 500 + b"]}"
#: Faults that cut the answer mid-body.
DROPS = (FaultKind.network, FaultKind.reset_mid_body)
#: The attempt log's ``transport_fault`` of each fault kind that breaks the wire.
TRANSPORT_FAULTS = {
    FaultKind.refused: "refused",
    FaultKind.outage: "refused",
    FaultKind.network: "network",
    FaultKind.reset_mid_body: "reset",
    FaultKind.timeout: "timeout",
    FaultKind.commit_then_fail: "network",
}
#: How many pieces a slow body arrives in (at most).
SLOW_BODY_PIECES = 8


class InjectedNetworkFault(Exception):
    """Raised after a partial response so the server closes the connection (on purpose)."""


class InjectedFaultLogFilter(logging.Filter):
    """Keeps uvicorn from logging a traceback for every injected network fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, InjectedNetworkFault):
            log.debug("injected network fault: connection dropped (%s)", exc)
            return False
        return True


def install_log_filter() -> None:
    """Attach :class:`InjectedFaultLogFilter` to uvicorn's error logger (once)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, InjectedFaultLogFilter) for f in logger.filters):
        logger.addFilter(InjectedFaultLogFilter())


class DataPlane:
    """Serves every data route of the farm."""

    def __init__(self, farm: Farm) -> None:
        self.farm = farm
        self.pipeline = Pipeline(farm)

    async def __call__(self, scope: Scope, receive: Receive, send: Send, match: RouteMatch) -> None:
        started = time.perf_counter()
        received_at = time.time()
        farm = self.farm
        seen = _Answer(send)
        try:
            await self._handle(scope, receive, seen, match, started)
        except InjectedNetworkFault:
            seen.cut = True
            raise
        finally:
            call = seen.call
            farm.attempts.record(
                match,
                scope["method"],
                scope["path"],
                scope["query_string"],
                call.headers if call is not None else dict(scope["headers"]),
                call,
                seen.status,
                seen.retry_after,
                seen.transport_fault(call),
                received_at,
            )

    async def _handle(
        self, scope: Scope, receive: Receive, seen: _Answer, match: RouteMatch, started: float
    ) -> None:
        farm = self.farm
        service = farm.services[match.route.service]
        headers: dict[bytes, bytes] = dict(scope["headers"])
        request_id = headers.get(b"x-request-id") or farm.next_request_id().encode()
        method = scope["method"]
        endpoint = match.route.endpoints.get(method)
        if endpoint is None or (match.record_id is None) == endpoint.is_item:
            allow = match.route.allow.encode()
            reply = Reply(405, error_body("method_not_allowed", f"{method} is not served here"))
            reply.headers.append((b"allow", allow))
            await self._answer(seen, service, reply, request_id, service.drift.version)
            return
        body = b""
        if method == "POST":
            declared = body_cap_refusal(scope["headers"], MAX_BODY_BYTES)
            if declared is not None:  # refused before one byte of the body is read
                status, refusal = declared
                reply = Reply(status, error_body(refusal["error"], refusal["detail"]))
                await self._answer(seen, service, reply, request_id, service.drift.version)
                return
            body_or_reply = await _read_body(receive)
            if isinstance(body_or_reply, Reply):
                await self._answer(seen, service, body_or_reply, request_id, service.drift.version)
                return
            body = body_or_reply
        raw_query = scope["query_string"]
        query = (
            dict(parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True))
            if raw_query
            else {}
        )
        call = Call(service, match, method, scope["path"], query, headers, body, farm.clock.now())
        call.scope = scope
        seen.call = call
        try:
            await self._serve(call, receive, seen, request_id)
        except InjectedNetworkFault:
            raise
        except Exception:
            log.exception("data route %s %s failed", method, scope["path"])
            if call.responded:
                raise  # the server closes the connection; nothing better can be done now
            reply = Reply(500, error_body("internal", "unexpected error; see the farm log"))
            await self._answer(seen, service, reply, request_id, call.version)
        finally:
            service.metrics.observe(time.perf_counter() - started)

    async def _serve(self, call: Call, receive: Receive, seen: _Answer, request_id: bytes) -> None:
        send = seen.send
        pipeline = self.pipeline
        service = call.service
        reply = pipeline.before_handler(call)
        fault = call.fault
        if fault.latency > 0:
            await asyncio.sleep(fault.latency)
        if reply is not None:
            self._count(call, reply.status)
            reply.headers.extend(call.rate_headers)
            call.responded = True
            await self._answer(seen, service, reply, request_id, service.drift.version)
            return
        tenant = call.tenant
        assert tenant is not None
        kind = fault.kind
        if kind is not None:  # most calls roll no fault: one test instead of four
            if kind is FaultKind.refused or kind is FaultKind.outage:
                await self._refuse(call, send)
                return
            if kind in DROPS and not fault.after_commit:
                await self._drop(call, send, reset=kind is FaultKind.reset_mid_body)
                return
            if kind is FaultKind.timeout and not fault.after_commit:
                tenant.counts["timeouts"] += 1
                if await _hold(fault.delay, receive):
                    # The client gave up during the stall: nothing is served or committed.
                    tenant.count_answer("timeout")
                    return
        reply = pipeline.after_hold(call)
        reply.headers.extend(call.rate_headers)
        if fault.after_commit:
            await self._fail_after_commit(call, reply, receive, seen, request_id)
            return
        self._count(call, reply.status)
        call.responded = True
        if kind is not None and kind is FaultKind.slow_body:
            await self._trickle(call, reply, receive, send, request_id, fault.delay)
            return
        await self._answer(seen, service, reply, request_id, call.version)

    async def _fail_after_commit(
        self, call: Call, reply: Reply, receive: Receive, seen: _Answer, request_id: bytes
    ) -> None:
        """The write committed (or was refused); the client never learns of it."""
        send = seen.send
        tenant = call.tenant
        assert tenant is not None
        fault = call.fault
        kind = fault.kind
        assert kind is not None
        if call.commit is None:
            # Nothing was committed (a replay or a refused body): a plain fault of that kind.
            plain = FaultKind.server_error if kind is FaultKind.commit_then_5xx else kind
            self.farm.ledger.fault(tenant.service, tenant.tenant, plain.value)
            tenant.metrics.faults[plain.value] += 1
        if kind is FaultKind.commit_then_5xx:
            # A gateway in front of the service lost the answer: 502 or 504, its own body.
            gateway = Reply(fault.status, gateway_body(fault.status), list(call.rate_headers))
            self._count(call, fault.status)
            call.responded = True
            await self._answer(seen, call.service, gateway, request_id, call.version)
            return
        if kind is FaultKind.timeout:
            tenant.counts["timeouts"] += 1
            await _hold(fault.delay, receive)
        await self._drop(call, send, reply.body, reset=kind is FaultKind.reset_mid_body)

    async def _answer(
        self, seen: _Answer, service: ServiceState, reply: Reply, request_id: bytes, version: int
    ) -> None:
        """Send ``reply`` in the service's dialect (a refusal reworded, maybe restatused)."""
        shaper = service.dialect
        if not shaper.plain and reply.status >= 400:
            status = shaper.status(reply.status, None)
            reply = Reply(
                status,
                shaper.body(reply.status, reply.body, request_id),
                shaper.headers(reply.headers, reply.status),
            )
        await seen.whole(self.start_message(reply, request_id, version), reply.body)

    def _count(self, call: Call, status: int) -> None:
        if call.tenant is not None:
            call.tenant.count_answer(str(status))
        elif status in (401, 403):
            call.service.unattributed[str(status)] += 1
            call.service.metrics.unattributed.codes[str(status)] += 1

    async def _refuse(self, call: Call, send: Send) -> None:
        """Reset the connection before the request is read: not one byte of an answer."""
        assert call.tenant is not None
        call.tenant.count_answer("network")
        transport = transport_of(call.scope) if call.scope is not None else None
        if transport is None:
            # Without the socket front an app cannot reset a connection; the nearest it can do
            # is a cut after a partial answer (documented in farm/README.md).
            await self._drop(call, send)
            return
        call.responded = True
        reset_connection(transport)
        await asyncio.sleep(0)  # let uvicorn see the connection is gone before we return

    async def _drop(
        self, call: Call, send: Send, body: bytes = DROP_BODY, *, reset: bool = False
    ) -> None:
        assert call.tenant is not None
        call.responded = True
        call.tenant.count_answer("network")
        await send(
            {
                "type": "http.response.start",
                "status": 200 if call.method == "GET" else 201,
                "headers": [
                    (b"content-type", JSON),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
        )
        transport = transport_of(call.scope) if reset and call.scope is not None else None
        if transport is not None:
            await asyncio.sleep(0)  # the partial body reaches the socket before the RST
            reset_connection(transport)
            await asyncio.sleep(0)
            return
        raise InjectedNetworkFault(f"{call.service.spec.id}/{call.tenant.tenant} {call.path}")

    async def _trickle(
        self,
        call: Call,
        reply: Reply,
        receive: Receive,
        send: Send,
        request_id: bytes,
        seconds: float,
    ) -> None:
        """Headers at once, then the body in pieces spread over ``seconds``: every gap is short
        (a per-read timeout never fires) but the whole answer takes ``seconds``."""
        body = reply.body
        pieces = max(2, min(SLOW_BODY_PIECES, len(body)))
        size = -(-len(body) // pieces)
        gap = seconds / (pieces - 1)
        await self.send_start(send, reply, request_id, call.version)
        for start in range(0, len(body), size):
            if start and await _hold(gap, receive):
                # The client gave up: a committed write never reached it.
                if call.commit is not None and call.commit.entry is not None:
                    self.farm.ledger.mark_failed_after_commit(call.commit.entry)
                return
            last = start + size >= len(body)
            await send(
                {"type": "http.response.body", "body": body[start : start + size],
                 "more_body": not last}
            )  # fmt: skip

    @staticmethod
    def start_message(reply: Reply, request_id: bytes, version: int) -> Message:
        """The ``http.response.start`` of ``reply``: the farm's headers, then the reply's."""
        return {
            "type": "http.response.start",
            "status": reply.status,
            "headers": [
                (b"content-type", JSON),
                (b"content-length", b"%d" % len(reply.body)),
                (b"x-schema-version", b"%d" % version),
                (b"x-request-id", request_id),
                *reply.headers,
            ],
        }

    @classmethod
    async def send_start(cls, send: Send, reply: Reply, request_id: bytes, version: int) -> None:
        await send(cls.start_message(reply, request_id, version))

    @classmethod
    async def send_reply(cls, send: Send, reply: Reply, request_id: bytes, version: int) -> None:
        await send(cls.start_message(reply, request_id, version))
        await send({"type": "http.response.body", "body": reply.body})


class _Answer:
    """Watches what the data plane sends: status, Retry-After, and whether the body completed."""

    __slots__ = ("_send", "call", "complete", "cut", "retry_after", "status")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.call: Call | None = None
        self.status: int | None = None
        self.retry_after: bytes | None = None
        self.complete = False
        self.cut = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            # The last Retry-After sent, if any (a dict keeps a repeated name's last value).
            self.retry_after = dict(message["headers"]).get(b"retry-after")
        elif not message.get("more_body", False):
            self.complete = True
        await self._send(message)

    async def whole(self, start: Message, body: bytes) -> None:
        """Send a complete answer: ``start``, then ``body`` in one message (what :meth:`send`
        would note of the two, without going through it twice)."""
        self.status = start["status"]
        self.retry_after = dict(start["headers"]).get(b"retry-after")
        await self._send(start)
        self.complete = True
        await self._send({"type": "http.response.body", "body": body})

    def transport_fault(self, call: Call | None) -> str | None:
        """How the answer failed on the wire, if it did: ``refused`` (connection reset before
        any byte), ``network`` / ``reset`` (cut mid-body by FIN / RST), ``timeout`` (held; the
        client left, or was cut after the stall), ``client_gone`` (the client left on its own
        before the answer completed); None for a complete answer."""
        if self.complete:
            return None
        kind = call.fault.kind if call is not None else None
        wire = TRANSPORT_FAULTS.get(kind) if kind is not None else None
        if wire is not None:
            return wire
        return "network" if self.cut else "client_gone"


async def _read_body(receive: Receive) -> bytes | Reply:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return Reply(400, error_body("invalid_request", "client disconnected"))
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return Reply(413, error_body("payload_too_large", f"body over {MAX_BODY_BYTES} bytes"))
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _hold(seconds: float, receive: Receive) -> bool:
    """Wait ``seconds``; True if the client disconnected meanwhile (the wait then ends early)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (remaining := deadline - loop.time()) > 0:
        waiter = asyncio.ensure_future(receive())
        done, _ = await asyncio.wait({waiter}, timeout=remaining)
        if not done:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
            return False
        if waiter.result().get("type") == "http.disconnect":
            return True
        # An http.request message (e.g. the empty body of a GET): keep waiting.
    return False
