"""Per-connector figures for the scorecard: counters plus a bounded latency sample."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

#: Keep this many recent successful-call latencies for percentiles (bounded memory).
LATENCY_SAMPLE = 20_000


@dataclass(frozen=True)
class ConnectorStats:
    """A snapshot of one connector (latencies in seconds).

    ``latency_*`` is a logical call, successful ones, end to end: limiter pacing, token fetches,
    backoff and retries included. ``attempt_latency_*`` is one HTTP attempt on the wire.
    """

    connector_id: str
    calls: int
    successes: int
    failures: dict[str, int]
    attempts: int
    retries: int
    token_refreshes: int
    rate_limited: int
    dlq_entries: int
    drift_events: int
    latency_p50: float | None
    latency_p99: float | None
    current_rate: float
    circuit_state: str
    #: One HTTP attempt on the wire (2xx/3xx only; no pacing, backoff or retries), seconds.
    attempt_latency_p50: float | None = None
    attempt_latency_p99: float | None = None
    #: Total seconds attempts spent waiting in the client-side rate limiter.
    limiter_wait_seconds: float = 0.0


@dataclass
class StatsRecorder:
    """Mutable counters a connector updates as it works."""

    calls: int = 0
    successes: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    attempts: int = 0
    retries: int = 0
    rate_limited: int = 0
    dlq_entries: int = 0
    drift_events: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLE))
    attempt_latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLE))
    limiter_wait: float = 0.0

    def percentile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) of recent successful-call latencies, nearest rank."""
        return quantile(self.latencies, q)

    def attempt_percentile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) of recent successful HTTP attempts' wire latencies."""
        return quantile(self.attempt_latencies, q)


def quantile(sample: deque[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``sample``, nearest rank; None when empty."""
    if not sample:
        return None
    ordered = sorted(sample)
    index = min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))
    return ordered[index]


def stats_dict(stats: ConnectorStats) -> dict[str, Any]:
    """A snapshot as plain JSON-able data."""
    data = asdict(stats)
    data["failures"] = dict(stats.failures)
    return data
