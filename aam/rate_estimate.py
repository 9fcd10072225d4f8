"""Learning a server's refill rate from what it says is left (no advertised rate needed).

Providers that send only a remaining count (GitHub's ``X-RateLimit-Remaining``, the IETF
``RateLimit: r=``) still tell a client its rate, between the lines: between two answers the
server's bucket gained ``R * dt`` tokens and lost one per request it admitted, so

    R = (remaining_now - remaining_then + admitted_in_between) / dt

That only holds while the bucket never filled up in between (a full bucket wastes its refill), so
a span restarts whenever an answer shows a (nearly) full bucket. Admitted means the server took a
token: anything but a 429 that left nothing (``remaining == 0``); a 429 that left quota was a
spike after the bucket, and it did take a token.
"""

from __future__ import annotations

from collections import deque

#: Spans shorter than this are too noisy (``remaining`` is a whole number).
MIN_SPAN_SECONDS = 0.3
#: ... and must hold this many admitted requests (at a low rate a short span is one or two).
MIN_EVENTS = 8
#: Forget answers older than this (a limit that changes is followed within a few seconds).
WINDOW_SECONDS = 4.0
#: Weight of a new estimate in the running one.
SMOOTHING = 0.5
#: Buckets smaller than this say nothing readable about their refill.
TINY_BUCKET = 3
#: Keep at most this many answers (bounds memory at any request rate).
MAX_SAMPLES = 4096


class RefillEstimator:
    """Estimates a token bucket's refill rate (requests per second) from ``remaining`` readings."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, float, int]] = deque()
        self._admitted = 0
        self.capacity_seen = 0.0
        self.rate: float | None = None
        self.tiny = False  # the bucket holds fewer than TINY_BUCKET tokens

    def observe(
        self, now: float, remaining: float, *, status: int, capacity: float | None = None
    ) -> float | None:
        """Record one answer; returns the updated estimate when this answer produced one."""
        if status != 429 or remaining > 0:
            self._admitted += 1
        self.capacity_seen = max(self.capacity_seen, remaining + 1)
        cap = capacity if capacity is not None else self.capacity_seen
        self.tiny = cap < TINY_BUCKET
        if self.tiny:
            # A bucket of one or two reads 0 after every request whether it refilled in time or
            # sat full: a span cannot tell wasted refill from none, so no estimate at all.
            return None
        full = remaining >= cap - 1
        if full:
            # The bucket was full before this request: refill was being wasted, so no span
            # reaching back past this answer says anything about the rate.
            self._samples.clear()
        self._samples.append((now, remaining, self._admitted))
        while len(self._samples) > MAX_SAMPLES or (
            len(self._samples) > 1 and now - self._samples[0][0] > WINDOW_SECONDS
        ):
            self._samples.popleft()
        t0, r0, a0 = self._samples[0]
        span = now - t0
        if full or span < MIN_SPAN_SECONDS or self._admitted - a0 < MIN_EVENTS:
            return None
        estimate = (remaining - r0 + (self._admitted - a0)) / span
        if estimate <= 0:
            return None
        if self.rate is None:
            self.rate = estimate
        else:
            self.rate += SMOOTHING * (estimate - self.rate)
        return self.rate

    def saturated(self) -> bool:
        """True while the last answer showed a (nearly) full bucket: the client under-sends."""
        return len(self._samples) == 1
