"""Everything the farm knows at run time, per service and per (service, tenant).

:class:`Farm` owns the specs, credentials, token store, records, ledger, idempotency store, chaos
state and drift schedules; :class:`TenantState` is the per-(service, tenant) slice the pipeline
touches on every request (bucket, fault dice, counters, pre-resolved metric children).
"""

from __future__ import annotations

import itertools
import logging
import secrets
import tempfile
import weakref
from pathlib import Path
from typing import Any

from farm import durable, metrics
from farm.attempts import AttemptLog, CredentialIds
from farm.auth import Authenticator, TokenStore
from farm.brownout import Weather, Window
from farm.chaos import (
    LEVELS,
    ChaosLevel,
    ChaosState,
    FaultDice,
    FaultRates,
    fault_rates,
    weather_for,
)
from farm.clock import Clock
from farm.credentials import CredentialBook
from farm.dialect import DialectShaper
from farm.drift import DriftSchedule
from farm.idempotency import IdempotencyStore
from farm.lease import Lease, LeaseBook
from farm.ledger import Ledger
from farm.ratelimit import TokenBucket
from farm.ratelimit_headers import policy_headers
from farm.records import RecordStore
from farm.routes import RouteTable
from farm.spec import ServiceSpec
from farm.store import FarmStore
from farm.token_guard import TokenGuard, token_limits

log = logging.getLogger("farm")

STATUS_KEYS = (
    "calls", "2xx", "401", "403", "404", "429", "5xx", "network_faults", "timeouts",
    "tokens_issued", "writes_committed", "other_4xx", "idempotent_replays",
)  # fmt: skip


def status_key(code: int) -> str:
    """The ``/admin/status`` column an HTTP status is counted in."""
    if 200 <= code < 300:
        return "2xx"
    if code in (401, 403, 404, 429):
        return str(code)
    if code >= 500:
        return "5xx"
    return "other_4xx"


#: ``/admin/status`` column of every HTTP status as the data plane counts it (a string).
STATUS_COLUMNS = {str(code): status_key(code) for code in range(100, 600)}


class TenantState:
    """Per-(service, tenant) runtime state."""

    __slots__ = (
        "_browned", "bucket", "counts", "dice", "metrics", "policy_headers", "rates", "service",
        "spec", "tenant", "token_guard",
    )  # fmt: skip

    def __init__(self, spec: ServiceSpec, tenant: str, seed: int, now: float) -> None:
        self.spec = spec
        self.service = spec.id
        self.tenant = tenant
        self.counts = dict.fromkeys(STATUS_KEYS, 0)
        self.dice = FaultDice(seed, spec.id, tenant)
        limit = spec.rate_limit_for(tenant)
        self.bucket = TokenBucket(limit.burst, limit.max_rps, now)
        self.rates: FaultRates = fault_rates(spec, tenant, ChaosLevel.calm)
        self.policy_headers: list[tuple[bytes, bytes]] = []
        self.metrics = metrics.TenantMetrics()
        self._browned: dict[tuple[float, float], FaultRates] = {}
        self.token_guard = TokenGuard(seed, spec.id, tenant)

    def browned_out(self, extra_error: float, latency_factor: float) -> FaultRates:
        """This tenant's rates during a brownout window (cached per window shape)."""
        key = (extra_error, latency_factor)
        rates = self._browned.get(key)
        if rates is None:
            rates = self._browned[key] = self.rates.browned_out(extra_error, latency_factor)
        return rates

    def apply_chaos(self, level: ChaosLevel, now: float) -> None:
        """Recompute fault rates and the bucket shape for ``level``."""
        self.rates = fault_rates(self.spec, self.tenant, level)
        self._browned = {}
        self.token_guard.configure(token_limits(self.spec, level), now)
        limit = self.spec.rate_limit_for(self.tenant)
        factor = LEVELS[level].rate_factor
        capacity = max(1, round(limit.burst * factor))
        rate = limit.max_rps * factor
        self.bucket.reshape(capacity, rate, now)
        self.policy_headers = policy_headers(self.spec.rate_limit_headers, capacity, rate)

    def reset(self, seed: int, now: float) -> None:
        """Counters to zero, a fresh bucket and a re-seeded RNG."""
        self.counts = dict.fromkeys(STATUS_KEYS, 0)
        self.dice = FaultDice(seed, self.service, self.tenant)
        limit = self.spec.rate_limit_for(self.tenant)
        self.bucket = TokenBucket(limit.burst, limit.max_rps, now)
        self.token_guard = TokenGuard(seed, self.service, self.tenant)

    def count_answer(self, code: str) -> None:
        """Count one answered data request (``code`` is a status, ``network`` or ``timeout``)."""
        codes = self.metrics.codes
        codes[code] = codes.get(code, 0) + 1
        counts = self.counts
        counts["calls"] += 1
        if code == "network":
            counts["network_faults"] += 1
        elif code != "timeout":  # a stall the client gave up on is counted in "timeouts"
            counts[STATUS_COLUMNS.get(code) or status_key(int(code))] += 1


class ServiceState:
    """Per-service runtime state: spec, drift schedule, tenants, unattributed refusals."""

    def __init__(
        self,
        spec: ServiceSpec,
        drift: DriftSchedule,
        tenants: dict[str, TenantState],
        weather: Weather,
    ) -> None:
        self.spec = spec
        self.drift = drift
        self.tenants = tenants
        self.weather = weather
        self.dialect = DialectShaper(spec.dialect)
        self.unattributed = {"401": 0, "403": 0}
        self.metrics = metrics.ServiceMetrics()


class Farm:
    """The farm's whole runtime state, built from specs; the app and the pipeline share it."""

    def __init__(
        self,
        specs: list[ServiceSpec],
        *,
        seed: int = 42,
        admin_token: str | None = None,
        state_dir: Path | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.specs = {s.id: s for s in specs}
        if len(self.specs) != len(specs):
            raise ValueError("service ids must be unique")
        self.seed = seed
        self.clock = clock or Clock()
        self.state_dir = state_dir
        #: Changes with every process start: a runner that sees another one knows the farm
        #: restarted under it.
        self.boot_id = secrets.token_hex(8)
        # Ground truth is always written through a FarmStore (the same hot path either way);
        # without a state dir it lives in a private temporary folder removed with the farm.
        if state_dir is None:
            scratch = tempfile.TemporaryDirectory(prefix="gauntlet-farm-")
            self.store = FarmStore(Path(scratch.name))
            self._scratch: tempfile.TemporaryDirectory[str] | None = scratch
        else:
            self.store = FarmStore(state_dir)
            self._scratch = None
        weakref.finalize(self, _close_store, self.store, self._scratch)
        restored = self.store.restore()
        if restored.seed is not None and restored.seed != seed:
            log.info("continuing epoch %d of %s with its seed %d", restored.epoch,
                     self.store.path, restored.seed)  # fmt: skip
            self.seed = seed = restored.seed
        self.epoch = restored.epoch
        self.admin_token = admin_token or secrets.token_urlsafe(32)
        self.credentials = CredentialBook(specs, state_dir)
        self.routes = RouteTable(specs)
        self.tokens = TokenStore(self.clock)
        self.authenticator = Authenticator(self.credentials, self.tokens, specs)
        self.ledger = Ledger(restored.ledger_seq, self._persist_fault)
        self.attempts = AttemptLog(
            self.store, CredentialIds(self.credentials, self.tokens), restored.attempt_seq
        )
        self.attempts.epoch = self.epoch
        self.leases = LeaseBook(self._lease_expired)
        self.idempotency = IdempotencyStore(self.clock)
        self.chaos = ChaosState(list(self.specs))
        self.request_ids = itertools.count(1)
        self.request_id_prefix = secrets.token_hex(3)
        now = self.clock.now()
        self.started = now
        self.records = RecordStore(self.specs, seed, now)
        self.services: dict[str, ServiceState] = {}
        for spec in specs:
            drift = DriftSchedule(spec, self.records.generator, now)
            tenants = {t.id: TenantState(spec, t.id, seed, now) for t in spec.tenants}
            weather = Weather(spec, seed, now)
            self.services[spec.id] = ServiceState(spec, drift, tenants, weather)
        durable.restore(self, restored)
        self.apply_chaos()
        metrics.COLLECTOR.track(self)

    def _persist_fault(self, service: str, tenant: str, kind: str) -> None:
        self.store.put("fault", (self.epoch, service, tenant, kind))

    def _lease_expired(self, lease: Lease) -> None:
        self.set_chaos(ChaosLevel.calm)

    def identity(self) -> dict[str, Any]:
        """What every admin answer carries: boot id, epoch (resets so far), ledger and attempt
        sequence numbers (the last handed out)."""
        return {
            "boot_id": self.boot_id,
            "epoch": self.epoch,
            "ledger_seq": self.ledger.seq,
            "attempt_seq": self.attempts.seq,
        }

    def close(self) -> None:
        """Write what is queued and close the store (the farm stops serving)."""
        _close_store(self.store, self._scratch)

    def apply_chaos(self) -> None:
        """Push the current chaos levels into every tenant's fault rates and bucket."""
        now = self.clock.now()
        for sid, service in self.services.items():
            level = self.chaos.level_for(sid)
            for tenant in service.tenants.values():
                tenant.apply_chaos(level, now)
            service.weather.configure(*weather_for(service.spec, level))

    def chaos_gauge(self, service: str) -> int:
        """The chaos level of ``service`` as a number (0 off .. 4 hell)."""
        return LEVELS[self.chaos.level_for(service)].gauge

    def set_chaos(self, level: ChaosLevel, service: str | None = None) -> None:
        """``POST /admin/chaos``."""
        if service is not None and service not in self.services:
            raise KeyError(service)
        self.chaos.set(level, service)
        self.apply_chaos()
        log.info("chaos level %s for %s", level.value, service or "all services")

    def schedule_outage(
        self,
        service: str,
        tenant: str | None,
        at_seconds: float,
        duration_seconds: float,
        methods: tuple[str, ...] | None = None,
    ) -> dict[str, Any]:
        """``POST /admin/outages``: ``service`` (or one tenant of it) refuses every request (or
        every request of ``methods``) from ``at_seconds`` after the last reset, for
        ``duration_seconds``. KeyError names what is unknown."""
        state = self.services.get(service)
        if state is None:
            raise KeyError(f"no service {service!r}")
        if tenant is not None and tenant not in state.tenants:
            raise KeyError(f"service {service!r} has no tenant {tenant!r}")
        window = Window(
            "outage",
            at_seconds,
            at_seconds + duration_seconds,
            tenant,
            scheduled=True,
            methods=methods,
        )
        state.weather.schedule(window)
        log.info(
            "outage scheduled for %s%s%s: %.1f s to %.1f s after the reset",
            service,
            f" (tenant {tenant})" if tenant else "",
            f" ({', '.join(methods)} only)" if methods else "",
            window.start,
            window.end,
        )
        return window.as_json(service)

    def reset(self, seed: int | None = None) -> None:
        """``POST /admin/reset``: everything but the credentials back to the start."""
        if seed is not None:
            self.seed = seed
        now = self.clock.now()
        self.started = now
        self.tokens.clear()
        self.idempotency.clear()
        self.epoch += 1
        self.attempts.epoch = self.epoch
        self.store.put("epoch", (self.epoch, self.seed))
        self.ledger = Ledger(self.ledger.seq, self._persist_fault)
        self.records = RecordStore(self.specs, self.seed, now)
        self.chaos = ChaosState(list(self.specs))
        for service in self.services.values():
            service.drift.reset(self.records.generator, now)
            service.weather.configure(None, None, seed=self.seed, started=now)
            service.unattributed = {"401": 0, "403": 0}
            for tenant in service.tenants.values():
                tenant.reset(self.seed, now)
        self.apply_chaos()
        log.info("farm reset (seed %d)", self.seed)

    def next_request_id(self) -> str:
        """A short id unique within this process."""
        return f"{self.request_id_prefix}-{next(self.request_ids):x}"

    def advance_drift(self) -> None:
        """Fire time-triggered drift steps that are due (status reads call this)."""
        now = self.clock.now()
        for service in self.services.values():
            service.drift.advance(now)

    def status(self) -> dict[str, Any]:
        """``GET /admin/status``."""
        self.advance_drift()
        services: dict[str, Any] = {}
        for sid, service in self.services.items():
            services[sid] = {
                "schema_version": service.drift.version,
                "tenants": {t: dict(ts.counts) for t, ts in service.tenants.items()},
                "unattributed": dict(service.unattributed),
            }
        return {
            "chaos": self.chaos.as_json(),
            "seed": self.seed,
            "services": services,
            "farm": self.identity(),
        }

    def ledger_json(self, service: str | None = None, since_seq: int = 0) -> dict[str, Any]:
        """``GET /admin/ledger``."""
        self.advance_drift()
        out = self.ledger.as_json(service, since_seq)
        out["drift_events"] = [
            e.as_json()
            for sid, s in self.services.items()
            if service is None or sid == service
            for e in s.drift.events
        ]
        now = self.clock.now()
        out["correlated_events"] = [
            e
            for sid, s in self.services.items()
            if service is None or sid == service
            for e in s.weather.events(now)
        ]
        return out


def _close_store(store: FarmStore, scratch: tempfile.TemporaryDirectory[str] | None) -> None:
    store.close()
    if scratch is not None:
        scratch.cleanup()
