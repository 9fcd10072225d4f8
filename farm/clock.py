"""The farm's notion of time: monotonic seconds that tests can move forward without sleeping."""

from __future__ import annotations

import time


class Clock:
    """Monotonic time plus a manual offset (``advance``) so TTLs and timed drift are testable."""

    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> float:
        """Seconds on a monotonic scale (only differences mean anything)."""
        return time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        """Pretend ``seconds`` have passed (tests only; real time keeps running too)."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._offset += seconds
