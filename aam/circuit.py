"""A per-connector circuit breaker: closed → open → half-open → closed.

It opens when, over the last ``window`` attempt outcomes (at least ``min_calls``), the share of
server-side failures (5xx, network errors, timeouts) reaches ``failure_ratio``. While open, calls
fail fast for ``open_seconds`` (doubling on each failed probe up to ``max_open_seconds``); then
``half_open_probes`` calls are let through: a success closes it, a failure opens it again.
A ratio over a window rather than consecutive failures keeps it closed under heavy but partial
chaos (half the calls failing still means half succeed) and open under a real outage. The
defaults (95% of at least 40) were tuned on the farm's ``hell`` level (~60% failures): at 80% of
20 the breaker tripped on random streaks and its failed probes kept whole connectors dark.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from enum import IntEnum


class CircuitState(IntEnum):
    """Values match the ``aam_circuit_state`` gauge."""

    closed = 0
    half_open = 1
    open = 2


class CircuitBreaker:
    """Failure-ratio circuit breaker; single event loop, no locking needed."""

    def __init__(
        self,
        *,
        window: int = 50,
        min_calls: int = 40,
        failure_ratio: float = 0.95,
        open_seconds: float = 1.0,
        max_open_seconds: float = 10.0,
        half_open_probes: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self.min_calls = min_calls
        self.failure_ratio = failure_ratio
        self.base_open_seconds = open_seconds
        self.max_open_seconds = max_open_seconds
        self.half_open_probes = half_open_probes
        self._clock = clock
        self._outcomes: deque[bool] = deque(maxlen=window)  # True = failure
        self._failures = 0
        self._state = CircuitState.closed
        self._opened_at = 0.0
        self._open_seconds = open_seconds
        self._probes_in_flight = 0
        self.last_failure_class: str = "server_error"
        self.times_opened = 0

    @property
    def state(self) -> CircuitState:
        """Current state; an open circuit whose wait has passed reads as half-open."""
        if (
            self._state is CircuitState.open
            and self._clock() - self._opened_at >= self._open_seconds
        ):
            self._state = CircuitState.half_open
            self._probes_in_flight = 0
        return self._state

    def retry_in(self) -> float:
        """Seconds until an open circuit lets a probe through (0 when not open)."""
        if self.state is not CircuitState.open:
            return 0.0
        return max(0.0, self._opened_at + self._open_seconds - self._clock())

    def allow(self) -> bool:
        """May an attempt go out now? Reserves a probe slot when half-open."""
        state = self.state
        if state is CircuitState.closed:
            return True
        if state is CircuitState.half_open and self._probes_in_flight < self.half_open_probes:
            self._probes_in_flight += 1
            return True
        return False

    def record_success(self) -> None:
        """An attempt got a usable answer (any status that is not a server-side failure)."""
        if self._state is CircuitState.half_open:
            self._close()
            return
        self._push(False)

    def record_failure(self, error_class: str) -> None:
        """An attempt failed server-side (``server_error``, ``network_error``, ``timeout``)."""
        self.last_failure_class = error_class
        if self._state is CircuitState.half_open:
            self._open(backoff=True)
            return
        if self._state is CircuitState.open:
            return
        self._push(True)
        n = len(self._outcomes)
        if n >= self.min_calls and self._failures >= self.failure_ratio * n:
            self._open(backoff=False)

    def release_probe(self) -> None:
        """A half-open probe ended without an outcome that counts (e.g. a 4xx); free its slot."""
        if self._state is CircuitState.half_open and self._probes_in_flight > 0:
            self._probes_in_flight -= 1

    def _push(self, failed: bool) -> None:
        if len(self._outcomes) == self._outcomes.maxlen and self._outcomes[0]:
            self._failures -= 1
        self._outcomes.append(failed)
        if failed:
            self._failures += 1

    def _open(self, *, backoff: bool) -> None:
        self._open_seconds = (
            min(self.max_open_seconds, self._open_seconds * 2)
            if backoff
            else self.base_open_seconds
        )
        self._state = CircuitState.open
        self._opened_at = self._clock()
        self.times_opened += 1

    def _close(self) -> None:
        self._state = CircuitState.closed
        self._outcomes.clear()
        self._failures = 0
        self._open_seconds = self.base_open_seconds
        self._probes_in_flight = 0
