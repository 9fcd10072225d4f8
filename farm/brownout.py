"""Correlated faults: brownout windows and short full outages, scheduled from the seed.

Independent per-request faults never model a provider having a bad minute. Here a service (or
one of its tenants) goes through *windows*: during a **brownout** its error rate and its
latency go up together; during an **outage** every request is refused (the connection is reset
before the request is read). Windows come from an RNG seeded by ``(seed, service)``, laid out
on the time since the farm started (or was reset), like timed drift steps: the same seed gives
the same windows. The parameters come from the service spec (``brownouts`` / ``outages``) or,
when the spec sets none, from the chaos level (storm and hell have them; see farm/README.md).

A window can also be *scheduled* at a fixed time (``POST /admin/outages``: a scenario's
``outages:``, so a 30-second run is sure to meet one). Scheduled windows stay through chaos
level changes and end with a reset.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

from farm.spec import BrownoutProfile, OutageProfile, ServiceSpec

#: Windows are laid out this far (seconds) past the present; more are made as time passes.
LOOKAHEAD = 60.0


@dataclass(frozen=True, slots=True)
class Window:
    """One scheduled window: ``tenant`` None means the whole service."""

    kind: str  # brownout | outage
    start: float  # seconds since the farm started or was reset
    end: float
    tenant: str | None
    extra_error: float = 0.0
    latency_factor: float = 1.0
    scheduled: bool = False  # set at a fixed time by an admin call, not drawn from the seed
    methods: tuple[str, ...] | None = None  # only these HTTP methods (None: every request)

    def covers(self, elapsed: float, tenant: str, method: str | None = None) -> bool:
        return (
            self.start <= elapsed < self.end
            and (self.tenant is None or self.tenant == tenant)
            and (self.methods is None or method is None or method in self.methods)
        )

    def as_json(self, service: str) -> dict[str, Any]:
        return {
            "service": service,
            "tenant": self.tenant,
            "kind": self.kind,
            "start_s": round(self.start, 3),
            "end_s": round(self.end, 3),
            "extra_error_rate": self.extra_error,
            "latency_factor": self.latency_factor,
            "scheduled": self.scheduled,
            "methods": list(self.methods) if self.methods is not None else None,
        }


class _Stream:
    """The windows of one kind for one service, generated lazily in time order."""

    def __init__(
        self,
        rng: random.Random,
        kind: str,
        every: float,
        duration: float,
        tenants: list[str],
        tenant_share: float,
        extra_error: float = 0.0,
        latency_factor: float = 1.0,
    ) -> None:
        self._rng = rng
        self.kind = kind
        self._every = every
        self._duration = duration
        self._tenants = tenants
        self._tenant_share = tenant_share
        self._extra = extra_error
        self._factor = latency_factor
        self.windows: list[Window] = []
        self._cursor = 0.0
        self._current = 0  # index of the first window not yet over

    def _extend(self, until: float) -> None:
        rng = self._rng
        while self._cursor <= until:
            # Always four draws per window: gap, length, whether one tenant, which tenant.
            gap, length, scope, pick = rng.random(), rng.random(), rng.random(), rng.random()
            start = self._cursor + self._every * (0.5 + gap)
            end = start + self._duration * (0.5 + length)
            tenant = None
            if len(self._tenants) > 1 and scope < self._tenant_share:
                tenant = self._tenants[min(len(self._tenants) - 1, int(pick * len(self._tenants)))]
            self.windows.append(Window(self.kind, start, end, tenant, self._extra, self._factor))
            self._cursor = end

    def active(self, elapsed: float, tenant: str) -> Window | None:
        """The window covering ``tenant`` at ``elapsed``, if any."""
        if self._cursor <= elapsed:
            self._extend(elapsed + LOOKAHEAD)
        windows = self.windows
        i = self._current
        while i > 0 and windows[i - 1].end > elapsed:
            i -= 1  # asked about an earlier moment (a late request, a test)
        while i < len(windows) and windows[i].end <= elapsed:
            i += 1
        self._current = i
        if i < len(windows) and windows[i].covers(elapsed, tenant):
            return windows[i]
        return None

    def started(self, elapsed: float) -> list[Window]:
        """Windows that have begun by ``elapsed``."""
        if self._cursor <= elapsed:
            self._extend(elapsed)
        return [w for w in self.windows if w.start <= elapsed]


class Weather:
    """One service's correlated-fault schedule at the current chaos level."""

    def __init__(self, spec: ServiceSpec, seed: int, started: float) -> None:
        self.service = spec.id
        self._spec = spec
        self._seed = seed
        self.started = started
        self._streams: list[_Stream] = []
        self._scheduled: list[Window] = []

    @property
    def enabled(self) -> bool:
        return bool(self._streams) or bool(self._scheduled)

    def schedule(self, window: Window) -> None:
        """Add a window at a fixed time (seconds since the farm started or was reset)."""
        self._scheduled.append(window)
        self._scheduled.sort(key=lambda w: w.start)

    def configure(
        self,
        brownouts: BrownoutProfile | None,
        outages: OutageProfile | None,
        *,
        seed: int | None = None,
        started: float | None = None,
    ) -> None:
        """(Re)build the schedule from the start with these parameters (None: no windows). A
        new ``started`` (a reset) also drops the scheduled windows."""
        if seed is not None:
            self._seed = seed
        if started is not None:
            self.started = started
            self._scheduled = []
        tenants = [t.id for t in self._spec.tenants]
        self._streams = []
        if brownouts is not None:
            rng = _rng(self._seed, self.service, "brownouts")
            self._streams.append(
                _Stream(
                    rng,
                    "brownout",
                    brownouts.every_seconds,
                    brownouts.duration_seconds,
                    tenants,
                    brownouts.tenant_share,
                    brownouts.extra_error_rate,
                    brownouts.latency_factor,
                )
            )
        if outages is not None:
            rng = _rng(self._seed, self.service, "outages")
            self._streams.append(
                _Stream(
                    rng,
                    "outage",
                    outages.every_seconds,
                    outages.duration_seconds,
                    tenants,
                    outages.tenant_share,
                )
            )

    def at(self, now: float, tenant: str, method: str | None = None) -> Window | None:
        """The window a ``method`` request of ``tenant`` is in at ``now``: an outage wins over
        a brownout."""
        elapsed = now - self.started
        found = None
        for stream in self._streams:
            window = stream.active(elapsed, tenant)
            if window is not None and (found is None or window.kind == "outage"):
                found = window
        for window in self._scheduled:
            if window.start > elapsed:
                break
            if window.covers(elapsed, tenant, method) and (
                found is None or window.kind == "outage"
            ):
                found = window
        return found

    def events(self, now: float) -> list[dict[str, Any]]:
        """Windows that have begun, in start order (``correlated_events`` of the ledger)."""
        elapsed = now - self.started
        windows = [w for s in self._streams for w in s.started(elapsed)]
        windows += [w for w in self._scheduled if w.start <= elapsed]
        return [w.as_json(self.service) for w in sorted(windows, key=lambda w: w.start)]


def _rng(*parts: object) -> random.Random:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=16).digest()
    return random.Random(int.from_bytes(digest, "big"))
