"""``ConnectorInstance``: one (service, tenant) connection with every defence of the AAM.

A logical call is a loop of *attempts*. Each attempt passes the circuit breaker, gets a token
(refreshed ahead of expiry, single-flight), waits for the adaptive rate limiter, sends, and is
classified into exactly one error class. Between attempts: one refresh-and-retry on a 401,
exponential backoff with full jitter, a per-call attempt cap and the connector's retry budget.
Writes carry an idempotency key; for servers that ignore the key, the record's lookup field
carries it too and the connector looks the record up before re-sending after an ambiguous
failure. What fails for good is dead-lettered. Every attempt is logged (batched) and counted.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson

from aam.bugs import Bugs
from aam.calllog import CallLog
from aam.circuit import CircuitBreaker, CircuitState
from aam.credentials import TokenLifecycle
from aam.descriptor import ApiKeyAuth, ConnectorDescriptor, OAuth2ClientCredentials
from aam.dlq import DeadLetterQueue
from aam.drift import DriftEvent, SchemaGuard
from aam.errors import (
    AamError,
    CallTimeout,
    ClientError,
    NetworkError,
    ServerError,
    error_type,
)
from aam.idempotency import IdempotencyStore, derive_key, random_key, request_hash
from aam.intents import DONE, FAILED, PARKED, WriteIntents
from aam.metrics import ConnectorMetrics, attempt_result
from aam.outcome import Failure, Found, classify_status
from aam.pagination import MAX_RESTARTS, cursor_expired, link_next
from aam.policy import RatePolicy
from aam.profile import AamProfile, Defence
from aam.ratelimit import AdaptiveRateLimiter
from aam.retry_budget import RetryBudget
from aam.stats import ConnectorStats, StatsRecorder
from aam.token_grant import ClientCredentialsGrant
from aam.transport import (
    NetworkProfile,
    RawResponse,
    TransportFailure,
    is_rate_limit,
    make_transport,
)

#: Error classes a retry can help with (the server or the path to it may recover).
RETRYABLE = frozenset({"network_error", "timeout", "server_error", "rate_limit"})
#: Refresh-and-retry at most this often per call (each time for a newer token).
MAX_AUTH_RETRIES = 2
#: Safety bound on pages one ``paginate`` call follows.
MAX_PAGES = 100_000
_JSON = {"content-type": "application/json", "accept": "application/json"}


class ConnectorInstance:
    """One (service, tenant) connector. Built by :meth:`aam.Mesh.add_connector`."""

    def __init__(
        self,
        *,
        descriptor: ConnectorDescriptor,
        profile: AamProfile,
        rate_policy: RatePolicy,
        network: NetworkProfile,
        calllog: CallLog,
        idempotency: IdempotencyStore,
        dlq: DeadLetterQueue,
        intents: WriteIntents | None = None,
        mappings: dict[str, dict[str, str]] | None = None,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        bugs: Bugs | None = None,
    ) -> None:
        self.descriptor = descriptor
        self.bugs = bugs = bugs or Bugs()
        self.service = descriptor.service
        self.tenant = tenant = descriptor.tenant
        self.id = descriptor.connector_id
        self.profile = profile
        self.rate_policy = rate_policy
        self.network = network
        base_url = descriptor.base_url.rstrip("/")
        self._base_url = base_url
        self._base_path = urlsplit(base_url).path.rstrip("/")
        self._idempotency_header = descriptor.idempotency.header
        self._calllog = calllog
        self._idempotency = idempotency
        self._dlq = dlq
        self._intents = intents
        self._clock = clock
        self._rng = random.Random(f"{seed}:{self.id}") if seed is not None else random.Random()
        self._stats = StatsRecorder()
        self.metrics = ConnectorMetrics(self.id, self.service, tenant)
        self.transport = make_transport(base_url, network)
        self.limiter = AdaptiveRateLimiter(
            rate_policy.max_rps,
            rate_policy.burst,
            enabled=profile.has(Defence.rate_adaptation),
            clock=clock,
        )
        self.budget = RetryBudget(
            capacity=rate_policy.retry_budget_capacity,
            retry_cost=rate_policy.retry_cost,
            timeout_cost=rate_policy.timeout_retry_cost,
            success_deposit=rate_policy.success_deposit,
        )
        self.breaker = CircuitBreaker(clock=clock)
        self.guard = SchemaGuard(
            descriptor.resources,
            mappings or {},
            enabled=profile.has(Defence.drift_mapping),
            connector_id=self.id,
            bugs=bugs,
        )
        self.drift_log: deque[DriftEvent] = deque(maxlen=1000)
        self._retries_on = profile.has(Defence.retries)
        self._breaker_on = profile.has(Defence.circuit_breaker)
        self._idempotency_on = profile.has(Defence.idempotency)
        self._dead_letter_on = profile.has(Defence.dead_letter)
        auth = descriptor.auth
        self._static_headers: dict[str, str] = {"accept": "application/json"}
        if isinstance(auth, ApiKeyAuth):
            self._static_headers[auth.header] = auth.key
        self.lifecycle: TokenLifecycle | None = None
        if isinstance(auth, OAuth2ClientCredentials):
            grant = ClientCredentialsGrant(
                self.transport,
                auth.token_url,
                auth.client_id,
                auth.client_secret,
                connector_id=self.id,
                log=self._log_token_request,
                scope=auth.scope,
            )
            self.lifecycle = TokenLifecycle(
                grant,
                refresh=profile.has(Defence.token_refresh),
                clock=clock,
                connector_id=self.id,
                on_issued=self.metrics.token_refreshes.inc,
            )
        self.metrics.rate.set(self.limiter.rate)
        self.metrics.circuit.set(0)

    # -- public calls ---------------------------------------------------------------------------
    async def get(
        self, path: str, params: Any = None, *, require: Iterable[str] | None = None
    ) -> Any:
        """GET ``path``; the decoded body with records normalised to v1 field names."""
        return await self._get(path, params, require, page=False)

    async def _get(
        self, path: str, params: Any, require: Iterable[str] | None, *, page: bool
    ) -> Any:
        """GET; with ``page``, a bare-array page (``Link`` pagination) becomes
        ``{"data": [...], "next": <the Link rel=next>}`` before the drift guard sees it."""
        started = time.perf_counter()
        try:
            outcome = await self._call("GET", path, params, None, None, write_retry_ok=True)
            assert isinstance(outcome, RawResponse)
            body = self._decode(outcome)
            if page and isinstance(body, list):
                body = {"data": body, "next": link_next(outcome.headers.get("link"))}
            events: list[DriftEvent] = []
            try:
                body = self.guard.normalise_body(
                    path, body, require, outcome.headers.get("x-schema-version"), events
                )
            finally:
                self._record_drift(events)
        except AamError as exc:
            self._finish(started, exc)
            raise
        self._finish(started, None)
        return body

    async def paginate(
        self, path: str, params: Any = None, *, require: Iterable[str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield every record of a collection once, following ``next`` links (or ``Link``
        headers). Records that appear twice (a newest-first listing shifted by new records)
        are yielded once; an expired cursor restarts the scan (at most ``MAX_RESTARTS``)."""
        next_path: str | None = path
        page_params = params
        seen: set[Any] = set()
        restarts = 0
        for _ in range(MAX_PAGES):
            if not next_path:
                return
            try:
                page = await self._get(next_path, page_params, require, page=True)
            except ClientError as exc:
                if next_path == path or restarts >= MAX_RESTARTS or not cursor_expired(exc):
                    raise
                restarts += 1
                next_path, page_params = path, params  # the documented recovery: start over
                continue
            if not isinstance(page, dict):
                raise ServerError(
                    f"GET {path}: a page that is not a JSON object",
                    connector_id=self.id,
                    reason="invalid_page",
                )
            for record in page.get("data") or []:
                rid = record.get("id") if isinstance(record, dict) else None
                if rid is not None:
                    if rid in seen:
                        continue
                    seen.add(rid)
                yield record
            link = page.get("next")
            next_path = self.relative(link) if isinstance(link, str) and link else None
            page_params = None  # ``next`` carries its own query string
        raise ClientError(f"more than {MAX_PAGES} pages at {path}", connector_id=self.id)

    def relative(self, link: str) -> str:
        """A ``next`` link (absolute URL, absolute path or relative) as a path relative to the
        descriptor's ``base_url`` when it lies under it; else the absolute URL."""
        absolute = urljoin(self._base_url + "/", link)
        base = urlsplit(self._base_url)
        target = urlsplit(absolute)
        if (target.scheme, target.netloc) != (base.scheme, base.netloc):
            return absolute
        prefix = self._base_path
        if prefix and not (target.path == prefix or target.path.startswith(prefix + "/")):
            return absolute
        rel = target.path[len(prefix) :] or "/"
        return rel + (f"?{target.query}" if target.query else "")

    async def post(
        self,
        path: str,
        body: dict[str, Any],
        idempotency_key: str | None = None,
        *,
        operation_id: str | None = None,
        dead_letter: bool = True,
    ) -> dict[str, Any]:
        """Create a record, exactly once as far as the server lets us (see module docstring)."""
        started = time.perf_counter()
        if not self._idempotency_on:
            # Naive write: no key, no store; a retry after an ambiguous failure could duplicate,
            # so only failures known not to have reached the server are retried.
            try:
                result = await self._send_write(
                    path, body, None, lookup_first=False, blind=self.profile.retries_writes_blindly
                )
            except AamError as exc:
                await self._dead_letter(path, body, None, exc, dead_letter)
                self._finish(started, exc)
                raise
            self._finish(started, None)
            return result
        if idempotency_key is None:
            idempotency_key = (
                derive_key(self.id, path, operation_id) if operation_id else random_key()
            )
        key = idempotency_key
        req_hash = request_hash(body)
        try:
            async with self._idempotency.hold(key):
                known = await self._idempotency.get(key)
                if known is not None:
                    if (known.connector_id, known.path, known.request_hash) != (
                        self.id,
                        path,
                        req_hash,
                    ):
                        raise ClientError(
                            "idempotency key reused with a different request body",
                            connector_id=self.id,
                            reason="idempotency_key_reuse",
                        )
                    if known.status == "done":
                        self._finish(started, None, http=False)
                        stored: dict[str, Any] = known.response
                        return stored
                # The recovery point first (aam/intents.py), then the key: a crash between them
                # leaves an intent that was never sent, which a replay may send plainly.
                await self._record_intent(key, path, body)
                await self._idempotency.begin(key, self.id, path, req_hash)
                try:
                    # A key seen before may have reached the server already: look first.
                    result = await self._send_write(path, body, key, lookup_first=known is not None)
                except AamError as exc:
                    await self._idempotency.fail(key)
                    parked = await self._dead_letter(path, body, key, exc, dead_letter)
                    await self._close_intent(key, PARKED if parked or not dead_letter else FAILED)
                    raise
                await self._idempotency.complete(key, result)
                await self._close_intent(key, DONE)
        except AamError as exc:
            self._finish(started, exc)
            raise
        self._finish(started, None)
        return result

    def stats(self) -> ConnectorStats:
        """A snapshot of this connector's figures."""
        s = self._stats
        return ConnectorStats(
            connector_id=self.id,
            calls=s.calls,
            successes=s.successes,
            failures=dict(s.failures),
            attempts=s.attempts,
            retries=s.retries,
            token_refreshes=self.lifecycle.token_requests if self.lifecycle else 0,
            rate_limited=s.rate_limited,
            dlq_entries=s.dlq_entries,
            drift_events=s.drift_events,
            latency_p50=s.percentile(0.50),
            latency_p99=s.percentile(0.99),
            current_rate=self.limiter.rate,
            circuit_state=self.breaker.state.name if self._breaker_on else "disabled",
            attempt_latency_p50=s.attempt_percentile(0.50),
            attempt_latency_p99=s.attempt_percentile(0.99),
            limiter_wait_seconds=round(s.limiter_wait, 6),
        )

    async def aclose(self) -> None:
        """Close the HTTP pool and stop background token work."""
        if self.lifecycle is not None:
            await self.lifecycle.aclose()
        await self.transport.aclose()

    # -- writes -----------------------------------------------------------------------------------
    def _lookup_field(self, path: str) -> str | None:
        """The lookup field to embed the key in, for servers that ignore Idempotency-Key."""
        if self.descriptor.idempotency.supported or not self._idempotency_on:
            return None
        where = self.guard.route(path)
        if where is None:
            return None
        return self.descriptor.resources[where[0]].lookup_field

    async def _send_write(
        self,
        path: str,
        body: dict[str, Any],
        key: str | None,
        *,
        lookup_first: bool,
        blind: bool = False,
    ) -> dict[str, Any]:
        lookup_field = self._lookup_field(path) if key else None
        recover: Callable[[], Any] | None = None
        send_body = body
        if lookup_field is not None and key is not None:
            value = body.get(lookup_field)
            if value is None:
                send_body = {**body, lookup_field: key}
                value = key
            lookup_value = value

            async def recover() -> Found | Failure | None:
                return await self._lookup(path, lookup_field, lookup_value)

        # With a key the server dedupes (or the lookup does): any retryable failure may be
        # retried. Without one, only failures that certainly did not reach the server are.
        safe_to_repeat = self.descriptor.idempotency.supported or recover is not None
        write_retry_ok = (key is not None and safe_to_repeat) or blind
        outcome = await self._call(
            "POST",
            path,
            None,
            orjson.dumps(send_body),
            key,
            write_retry_ok=write_retry_ok,
            recover=recover,
            lookup_first=lookup_first and recover is not None,
        )
        record = outcome.record if isinstance(outcome, Found) else self._decode(outcome)
        events: list[DriftEvent] = []
        where = self.guard.route(path)
        if where is not None and isinstance(record, dict):
            # The write is done whatever the shape: map what can be mapped, require nothing.
            record = self.guard.normalise_record(where[0], record, (), events)
        self._record_drift(events)
        return record  # type: ignore[no-any-return]

    async def _lookup(self, path: str, field: str, value: Any) -> Found | Failure | None:
        outcome = await self._attempt("GET", path, {field: value}, None, None)
        if isinstance(outcome, Failure):
            return outcome
        try:
            body = self._decode(outcome)
        except AamError as exc:
            return Failure(exc, retryable=True, maybe_committed=True)
        records = body.get("data") if isinstance(body, dict) else body
        if isinstance(records, list) and records:
            return Found(records[0])
        return None

    async def _record_intent(self, key: str, path: str, body: dict[str, Any]) -> None:
        if self._intents is None:
            return
        injected = self._lookup_field(path)  # the key goes in the body when it has no value
        if injected is not None:
            value = body.get(injected)
            value = key if value is None else value
        else:
            field = self._resource_lookup_field(path)
            value = body.get(field) if field else None
        await self._intents.record(key, self.id, path, body, value)

    async def _close_intent(self, key: str, status: str) -> None:
        if self._intents is not None:
            await self._intents.close(key, status)

    def _resource_lookup_field(self, path: str) -> str | None:
        where = self.guard.route(path)
        return self.descriptor.resources[where[0]].lookup_field if where is not None else None

    async def _dead_letter(
        self, path: str, body: dict[str, Any], key: str | None, exc: AamError, wanted: bool
    ) -> bool:
        """Park a failed write in the DLQ when wanted and the profile has one; True if parked."""
        if not (wanted and self._dead_letter_on):
            return False
        if exc.reason == "idempotency_key_reuse":
            return False  # the caller's mistake, not a failed write
        await self._dlq.add(self.id, path, body, key, exc)
        exc.deferred = True
        self._stats.dlq_entries += 1
        self.metrics.dlq_writes.inc()  # the depth gauge is re-read from the DLQ by the Mesh
        return True

    # -- the attempt loop -------------------------------------------------------------------------
    async def _call(
        self,
        method: str,
        path: str,
        params: Any,
        content: bytes | None,
        key: str | None,
        *,
        write_retry_ok: bool,
        recover: Callable[[], Any] | None = None,
        lookup_first: bool = False,
    ) -> RawResponse | Found:
        attempts = 0
        retries = 0
        refused_version = -1
        auth_retries = 0
        max_attempts = self.rate_policy.max_attempts if self._retries_on else 1
        if self.profile.max_attempts is not None:
            max_attempts = min(max_attempts, self.profile.max_attempts)
        if self.bugs.max_attempts is not None:
            max_attempts = self.bugs.max_attempts
        while True:
            outcome: RawResponse | Failure | Found | None = None
            if lookup_first and recover is not None:
                outcome = await recover()
                if outcome is None:
                    lookup_first = False  # not there: the earlier attempt did not commit
            if outcome is None:
                outcome = await self._attempt(method, path, params, content, key, retries)
            attempts += 1
            if not isinstance(outcome, Failure):
                return outcome
            failure = outcome
            failure.error.attempts = attempts
            if (
                failure.auth_version is not None
                and failure.auth_version > refused_version
                and auth_retries < MAX_AUTH_RETRIES
                and self.lifecycle is not None
                and await self.lifecycle.on_unauthorized(failure.auth_version)
            ):
                # One refresh-and-retry per refused token (never the same token twice), outside
                # the retry budget: a rotation is not a server failure.
                refused_version = failure.auth_version
                auth_retries += 1
                continue
            if failure.maybe_committed and recover is not None:
                # (the fresh-key bug trusts its key alone, so it never looks first)
                lookup_first = not self.bugs.fresh_key_per_attempt
            if not failure.retryable or attempts >= max_attempts:
                raise failure.error
            if method == "POST" and failure.maybe_committed and not write_retry_ok:
                raise failure.error
            if not self.bugs.no_retry_budget and not self.budget.try_withdraw(
                timeout=failure.error.error_class == "timeout"
            ):
                raise failure.error
            delay = (
                0.0 if self.bugs.no_backoff else self.rate_policy.backoff.delay(retries, self._rng)
            )
            if (
                failure.retry_after
                and not self.bugs.ignore_retry_after
                and (not self.limiter.enabled or failure.error.error_class != "rate_limit")
            ):
                # A 429's Retry-After blocks the whole connector in the limiter; a 503's (or a
                # 429's when the limiter is off) delays this call's retry.
                delay = max(delay, failure.retry_after)
            retries += 1
            self._stats.retries += 1
            self.metrics.retries.inc()
            if delay > 0:
                await asyncio.sleep(delay)

    async def _attempt(
        self,
        method: str,
        path: str,
        params: Any,
        content: bytes | None,
        key: str | None,
        retries: int = 0,
    ) -> RawResponse | Failure:
        breaker = self.breaker
        if self._breaker_on and not breaker.allow():
            self.metrics.circuit.set(int(breaker.state))
            cls = error_type(breaker.last_failure_class)
            return Failure(
                cls(
                    f"circuit open for {self.id} (last failure: {breaker.last_failure_class})",
                    connector_id=self.id,
                    reason="circuit_open",
                ),
                retryable=False,
                maybe_committed=False,
            )
        try:
            return await self._attempt_allowed(method, path, params, content, key, retries)
        except BaseException:
            # Cancelled (or a bug) before an outcome was recorded: free a half-open probe slot,
            # or the breaker would wait forever for a probe that never reports.
            if self._breaker_on:
                breaker.release_probe()
            raise

    async def _attempt_allowed(
        self,
        method: str,
        path: str,
        params: Any,
        content: bytes | None,
        key: str | None,
        retries: int,
    ) -> RawResponse | Failure:
        breaker = self.breaker
        headers = dict(self._static_headers)
        if content is not None:
            headers["content-type"] = "application/json"
        if key is not None:
            headers[self._idempotency_header] = (
                random_key() if self.bugs.fresh_key_per_attempt else key
            )
        version: int | None = None
        if self.lifecycle is not None:
            if self.bugs.token_per_attempt:
                self.lifecycle.descriptor.expires_at = 0.0  # "always fetch a fresh token"
            try:
                token, version = await self.lifecycle.token()
            except AamError as exc:
                if self._breaker_on:
                    breaker.release_probe()
                return Failure(exc, exc.error_class in RETRYABLE, maybe_committed=False)
            headers["authorization"] = f"Bearer {token}"
        queued = time.perf_counter()
        sent_at = await self.limiter.acquire()
        started = time.perf_counter()
        self._stats.limiter_wait += started - queued
        try:
            response = await self.transport.request(
                method, path, params=params, headers=headers, content=content
            )
        except TransportFailure as failure:
            latency = time.perf_counter() - started
            self._log_attempt(method, path, None, failure.error_class, retries, key, latency)
            if self._breaker_on:
                breaker.record_failure(failure.error_class)
                self.metrics.circuit.set(int(breaker.state))
            cls = CallTimeout if failure.error_class == "timeout" else NetworkError
            return Failure(
                cls(str(failure), connector_id=self.id, reason=failure.detail[:80]),
                retryable=True,
                maybe_committed=failure.maybe_sent,
            )
        latency = time.perf_counter() - started
        status = response.status_code
        if version is not None and status != 401:
            assert self.lifecycle is not None
            self.lifecycle.on_answer(version)
        # A rate limit worded as a 403 (GitHub, Salesforce) paces the limiter like a 429.
        limited = status == 429 or (status == 403 and is_rate_limit(response))
        answer_headers: Any = response.headers
        if self.bugs.ignore_retry_after:
            answer_headers = {k: v for k, v in answer_headers.items() if k.lower() != "retry-after"}
        self.limiter.on_response(429 if limited else status, answer_headers, sent_at)
        if status < 400:
            self._stats.attempt_latencies.append(latency)
            self._log_attempt(method, path, status, None, retries, key, latency)
            if self._breaker_on:
                breaker.record_success()
            self.budget.deposit()
            return response
        failure_ = classify_status(
            response,
            connector_id=self.id,
            token_version=version,
            oauth=self.lifecycle is not None,
            idempotency_key=key,
        )
        if limited:
            self._stats.rate_limited += 1
        self._log_attempt(method, path, status, failure_.error.error_class, retries, key, latency)
        if self._breaker_on:
            if status >= 500:
                breaker.record_failure("server_error")
            else:
                breaker.record_success()  # the server is alive and answering
            self.metrics.circuit.set(int(breaker.state))
        self.metrics.rate.set(self.limiter.rate)
        return failure_

    # -- bookkeeping ------------------------------------------------------------------------------
    def _decode(self, response: RawResponse) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise ServerError(
                f"{response.status_code} with a body that is not JSON",
                connector_id=self.id,
                status=response.status_code,
                reason="invalid_json",
            ) from None

    def _log_attempt(
        self,
        method: str,
        path: str,
        status: int | None,
        error_class: str | None,
        retries: int,
        key: str | None,
        latency: float,
    ) -> None:
        self._stats.attempts += 1
        self.metrics.attempts[attempt_result(status, error_class)].inc()
        self._calllog.record(
            (
                self.id,
                self.tenant,
                time.time(),
                method,
                path.split("?", 1)[0],
                status,
                error_class,
                retries,
                key,
                latency,
            )
        )

    def _log_token_request(
        self, path: str, status: int | None, error_class: str | None, latency: float
    ) -> None:
        """A call-log row for a token request (not a data attempt: no stats, no attempt metric)."""
        now = time.time()
        self._calllog.record(
            (self.id, self.tenant, now, "POST", path, status, error_class, 0, None, latency)
        )

    def _finish(self, started: float, error: AamError | None, *, http: bool = True) -> None:
        elapsed = time.perf_counter() - started
        s = self._stats
        s.calls += 1
        if error is None:
            s.successes += 1
            s.latencies.append(elapsed)
            self.metrics.calls["success"].inc()
        else:
            s.failures[error.error_class] += 1
            self.metrics.calls[error.error_class].inc()
        if http:
            self.metrics.duration.observe(elapsed)
        if self.limiter.enabled:
            self.metrics.rate.set(self.limiter.rate)
        if self._breaker_on:
            self.metrics.circuit.set(int(self.breaker.state))

    def _record_drift(self, events: list[DriftEvent]) -> None:
        for event in events:
            self._stats.drift_events += 1
            self.metrics.drift[event.action].inc()
            self.drift_log.append(event)
            self._calllog.record_drift(self.id, event)


__all__ = ["CircuitState", "ConnectorInstance", "NetworkProfile", "RatePolicy"]
