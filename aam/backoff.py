"""Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter").

``delay(n) = uniform(0, min(cap, base * 2**n))``: full jitter spreads retries of many callers
over the whole window, so a burst of failures does not come back as a synchronised burst.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delay policy between attempts of one call."""

    base_seconds: float = 0.05
    cap_seconds: float = 2.0

    def ceiling(self, retry_number: int) -> float:
        """Upper bound of the delay before retry ``retry_number`` (0 for the first retry)."""
        # min() before the power would overflow for large retry numbers; clamp the exponent.
        return min(self.cap_seconds, self.base_seconds * (2 ** min(retry_number, 30)))

    def delay(self, retry_number: int, rng: random.Random | None = None) -> float:
        """A full-jitter delay in ``[0, ceiling(retry_number)]``."""
        r = rng.random() if rng is not None else random.random()
        return r * self.ceiling(retry_number)
