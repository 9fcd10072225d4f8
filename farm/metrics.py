"""The farm's Prometheus metrics: every family declared once, here (a contract: farm/README.md).

The data plane counts into plain integers (:class:`TenantMetrics`, :class:`ServiceMetrics`) —
no lock and no label lookup per request — and :class:`FarmCollector` turns them into the
families below when Prometheus scrapes. Every (service, tenant) starts with its label sets at
zero, so series exist before anything happens. The families live in the farm's own registry, so
a process embedding the farm next to other components serves only ``gauntlet_farm_*`` on the
farm's ``/metrics``. Tenant labels are tenant ids, never credentials; refusals that cannot be
pinned on a tenant use :data:`UNATTRIBUTED`.
"""

from __future__ import annotations

import bisect
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector


class Farm(Protocol):
    """What the collector reads from a farm (``farm.state.Farm`` satisfies it; no import back)."""

    @property
    def services(self) -> dict[str, Any]: ...

    def chaos_gauge(self, service: str) -> int: ...


@dataclass(frozen=True)
class Family:
    """One metric family: name, type, help text and label names."""

    name: str
    kind: str  # counter | gauge | histogram
    help: str
    labels: tuple[str, ...]


REQUESTS = Family(
    "gauntlet_farm_requests_total", "counter",
    "Data requests answered, by HTTP status (code=network for dropped connections, "
    "code=timeout when the client left during an injected stall).",
    ("service", "tenant", "code"),
)  # fmt: skip
REQUEST_DURATION = Family(
    "gauntlet_farm_request_duration_seconds", "histogram",
    "Time to answer a data request.", ("service",),
)  # fmt: skip
FAULTS = Family(
    "gauntlet_farm_faults_injected_total", "counter",
    "Faults injected, by kind.", ("service", "tenant", "kind"),
)  # fmt: skip
RATE_LIMITED = Family(
    "gauntlet_farm_rate_limited_total", "counter",
    "Requests refused by the token bucket.", ("service", "tenant"),
)  # fmt: skip
TOKENS_ISSUED = Family(
    "gauntlet_farm_tokens_issued_total", "counter",
    "OAuth2 access tokens issued.", ("service", "tenant"),
)  # fmt: skip
AUTH_FAILURES = Family(
    "gauntlet_farm_auth_failures_total", "counter",
    "401/403 answers by reason (expired, rotated, unknown, missing, wrong_tenant).",
    ("service", "tenant", "reason"),
)  # fmt: skip
WRITES_COMMITTED = Family(
    "gauntlet_farm_writes_committed_total", "counter",
    "Write effects committed in the ledger.", ("service", "tenant"),
)  # fmt: skip
IDEMPOTENT_REPLAYS = Family(
    "gauntlet_farm_idempotent_replays_total", "counter",
    "Repeated Idempotency-Keys answered from the store.", ("service", "tenant"),
)  # fmt: skip
SCHEMA_VERSION = Family(
    "gauntlet_farm_schema_version", "gauge", "Schema version currently served.", ("service",)
)
CHAOS_LEVEL = Family(
    "gauntlet_farm_chaos_level", "gauge",
    "Chaos level: 0 off, 1 calm, 2 mild, 3 storm, 4 hell.", ("service",),
)  # fmt: skip
RATE_LIMIT_RPS = Family(
    "gauntlet_farm_rate_limit_rps", "gauge",
    "Effective token-bucket refill rate (after chaos).", ("service", "tenant"),
)  # fmt: skip
SERVICE_INFO = Family(
    "gauntlet_farm_service_info", "gauge",
    "One series per served service (value 1).", ("service", "auth_type", "base_path"),
)  # fmt: skip
FAMILIES = (
    REQUESTS, REQUEST_DURATION, FAULTS, RATE_LIMITED, TOKENS_ISSUED, AUTH_FAILURES,
    WRITES_COMMITTED, IDEMPOTENT_REPLAYS, SCHEMA_VERSION, CHAOS_LEVEL, RATE_LIMIT_RPS,
    SERVICE_INFO,
)  # fmt: skip

#: Tenant label of a refusal whose credential names no tenant of that service.
UNATTRIBUTED = "_unattributed"
#: Label values that exist at zero for every (service, tenant) from the start.
MAIN_CODES = (
    "200", "201", "400", "401", "403", "404", "422", "429", "500", "502", "503", "504",
)  # fmt: skip
EXTRA_CODES = ("network", "timeout")
FAULT_KINDS = (
    "server_error", "rate_limit_spike", "network", "reset_mid_body", "refused", "timeout",
    "slow_body", "commit_then_fail", "commit_then_5xx", "outage", "token_rate_limited",
    "token_error",
)  # fmt: skip
AUTH_REASONS = ("expired", "rotated", "unknown", "missing", "wrong_tenant")
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class TenantMetrics:
    """Monotonic counters of one (service, tenant). Never reset (admin reset resets the status
    counters, not Prometheus counters)."""

    __slots__ = (
        "auth_failures", "codes", "faults", "idempotent_replays", "rate_limited",
        "tokens_issued", "writes_committed",
    )  # fmt: skip

    def __init__(self) -> None:
        self.codes = dict.fromkeys((*MAIN_CODES, *EXTRA_CODES), 0)
        self.faults = dict.fromkeys(FAULT_KINDS, 0)
        self.auth_failures = dict.fromkeys(AUTH_REASONS, 0)
        self.rate_limited = 0
        self.tokens_issued = 0
        self.writes_committed = 0
        self.idempotent_replays = 0


class ServiceMetrics:
    """Per-service request-duration histogram and refusals pinned on no tenant."""

    __slots__ = ("buckets", "count", "sum", "unattributed")

    def __init__(self) -> None:
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)
        self.sum = 0.0
        self.count = 0
        self.unattributed = TenantMetrics()

    def observe(self, seconds: float) -> None:
        """Record one request duration."""
        self.buckets[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.sum += seconds
        self.count += 1


def _families() -> dict[str, Metric]:
    out: dict[str, Metric] = {}
    for family in FAMILIES:
        labels = list(family.labels)
        if family.kind == "counter":
            out[family.name] = CounterMetricFamily(family.name, family.help, labels=labels)
        elif family.kind == "gauge":
            out[family.name] = GaugeMetricFamily(family.name, family.help, labels=labels)
        else:
            out[family.name] = HistogramMetricFamily(family.name, family.help, labels=labels)
    return out


class FarmCollector(Collector):
    """Builds every family from the live farms' counters at scrape time."""

    def __init__(self) -> None:
        self._farms: weakref.WeakSet[Farm] = weakref.WeakSet()

    def track(self, farm: Farm) -> None:
        """Export ``farm``'s counters (until :meth:`forget` or garbage collection)."""
        self._farms.add(farm)

    def forget(self, farm: Farm) -> None:
        """Stop exporting ``farm`` (it stopped serving)."""
        self._farms.discard(farm)

    def describe(self) -> Iterable[Metric]:
        return list(_families().values())

    def collect(self) -> Iterator[Metric]:
        families = _families()
        # Several farms in one process (tests) may serve the same ids: sum their counters.
        sums: dict[tuple[str, tuple[str, ...]], float] = {}
        histograms: dict[str, tuple[list[int], float]] = {}
        gauges: dict[tuple[str, tuple[str, ...]], float] = {}

        def add(family: Family, labels: tuple[str, ...], value: float) -> None:
            sums[(family.name, labels)] = sums.get((family.name, labels), 0) + value

        for farm in list(self._farms):
            for sid, service in list(farm.services.items()):
                spec = service.spec
                gauges[(SERVICE_INFO.name, (sid, spec.auth.type.value, spec.base_path))] = 1
                gauges[(SCHEMA_VERSION.name, (sid,))] = service.drift.version
                gauges[(CHAOS_LEVEL.name, (sid,))] = farm.chaos_gauge(sid)
                counts, total = histograms.get(sid, ([0] * len(service.metrics.buckets), 0.0))
                for i, n in enumerate(service.metrics.buckets):
                    counts[i] += n
                histograms[sid] = (counts, total + service.metrics.sum)
                for tid, tenant in service.tenants.items():
                    gauges[(RATE_LIMIT_RPS.name, (sid, tid))] = tenant.bucket.rate
                    _add_tenant(add, sid, tid, tenant.metrics)
                _add_tenant(add, sid, UNATTRIBUTED, service.metrics.unattributed, unattributed=True)
        for (name, labels), value in sums.items():
            families[name].add_metric(list(labels), value)  # type: ignore[attr-defined]
        for (name, labels), value in gauges.items():
            families[name].add_metric(list(labels), value)  # type: ignore[attr-defined]
        duration = families[REQUEST_DURATION.name]
        for sid, (counts, total) in histograms.items():
            cumulative, buckets = 0, []
            for bound, n in zip((*DURATION_BUCKETS, float("inf")), counts, strict=True):
                cumulative += n
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            duration.add_metric([sid], buckets, total)  # type: ignore[attr-defined]
        yield from families.values()


Add = Callable[[Family, tuple[str, ...], float], None]


def _add_tenant(add: Add, sid: str, tid: str, m: TenantMetrics, unattributed: bool = False) -> None:
    for reason, n in m.auth_failures.items():
        add(AUTH_FAILURES, (sid, tid, reason), n)
    if unattributed:  # only refusals are ever pinned on nobody
        for code in ("401", "403"):
            add(REQUESTS, (sid, tid, code), m.codes[code])
        return
    for code, n in list(m.codes.items()):  # a scrape runs in a worker thread: copy first
        add(REQUESTS, (sid, tid, code), n)
    for kind, n in m.faults.items():
        add(FAULTS, (sid, tid, kind), n)
    add(RATE_LIMITED, (sid, tid), m.rate_limited)
    add(TOKENS_ISSUED, (sid, tid), m.tokens_issued)
    add(WRITES_COMMITTED, (sid, tid), m.writes_committed)
    add(IDEMPOTENT_REPLAYS, (sid, tid), m.idempotent_replays)


REGISTRY = CollectorRegistry(auto_describe=False)
COLLECTOR = FarmCollector()
REGISTRY.register(COLLECTOR)
