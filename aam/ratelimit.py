"""Client-side rate limiting that adapts to the server (AWS SDK "adaptive" retry mode, CUBIC).

One :class:`AdaptiveRateLimiter` per connector, i.e. per (service, tenant): one tenant's
throttling never slows another. Nothing about the server's limit is assumed beyond what its
provider publishes (the descriptor's ``rate_limit``, if any) and what its answers say. It is a
token bucket whose fill rate is

- **capped by what the server advertises** (``RateLimit-Policy``, IETF draft ratelimit-headers)
  times a small safety factor, and kept at or below what the server says is left (``RateLimit``
  ``r=``, ``X-RateLimit-Remaining``);
- **cut multiplicatively on a real 429** (``beta = 0.7``) and **probed back up** along a CUBIC
  curve (``rate(t) = C*(t - K)**3 + W_max``), as the AWS SDKs do;
- **blocked until ``Retry-After`` has passed**: no request of this connector goes out before then;
- **learned when nobody says it**: from ``remaining`` readings (:mod:`aam.rate_estimate`) when the
  server sends a count but no policy (GitHub style), and from the rate the server admitted
  requests at just before a 429 when it sends nothing but ``Retry-After`` (or not even that).

Waiting is reservation-based (like Go's ``rate.Limiter``): each caller takes a slot in the future
and sleeps once, so N waiters cost N sleeps, not N² wake-ups. A block or a rate cut bumps the
*epoch*, which makes sleepers re-plan at the new rate instead of firing on the old schedule.
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aam.rate_estimate import RefillEstimator

#: CUBIC constants from the AWS SDKs' adaptive retry mode.
CUBIC_BETA = 0.7
CUBIC_SCALE = 0.4
#: Send a little below the advertised rate so network jitter never empties the server's bucket.
HEADROOM = 0.98
#: Use this share of the server's burst client-side; the rest absorbs arrival jitter.
BURST_SHARE = 0.5
MIN_RATE = 0.5
#: Never plan more than this far ahead for one caller (bounds every wait).
MAX_WAIT_SECONDS = 60.0
#: While a learned limit's bucket shows full, raise the soft ceiling by this share per second,
#: up to this multiple of the learned rate (a limit that went up is found again).
PROBE_PER_SECOND = 0.10
PROBE_LIMIT = 1.5
#: After a 429 with nothing but Retry-After: resume at this share of the rate the server was
#: seen admitting, then probe up along a gentle line (this share of it per second).
ADMITTED_RESUME = 0.93
ADMITTED_PROBE_PER_SECOND = 0.005
#: When that rate was read across a Retry-After block (refused moments after resuming) it errs
#: low: probe up faster, compounding by this factor per second, until the next refusal.
LOW_BOUND_GROWTH_PER_SECOND = 1.5
#: The admitted-rate estimate looks back at most this far (and never across a block).
ADMITTED_WINDOW = 2.0
#: The cut when a 429 comes less than half a second after sending resumed (far too fast).
FAST_BETA = 0.5
#: Slow down on an empty bucket reported with a 2xx at most this often (before a rate is known).
PREEMPT_INTERVAL = 1.0
#: Longest pause taken on our own when the server reports an empty bucket.
MAX_HOLD_SECONDS = 1.0


@dataclass(frozen=True)
class ServerLimit:
    """What a response said about the server's limit."""

    rps: float | None = None
    burst: float | None = None
    remaining: float | None = None
    reset_seconds: float | None = None
    retry_after: float | None = None


_policy_cache: dict[str, tuple[float | None, float | None]] = {}


def _sf_params(item: str) -> tuple[str, dict[str, str]]:
    """One structured-field list member ``"name";a=1;b=2`` (or a bare ``10;w=1``)."""
    parts = [p.strip() for p in item.split(";")]
    params: dict[str, str] = {}
    for part in parts[1:]:
        name, _, raw = part.partition("=")
        params[name.strip().lower()] = raw.strip().strip('"')
    return parts[0].strip('"'), params


def parse_policy(value: str) -> tuple[float | None, float | None]:
    """``RateLimit-Policy`` → (requests per second, burst: always ``None``).

    The IETF draft form is a list of policies ``"name";q=<quota>;w=<window seconds>``; the
    tightest one (lowest q/w) wins. An older bare form ``<quota>;w=<window>`` is read too.
    """
    cached = _policy_cache.get(value)
    if cached is not None:
        return cached
    best: tuple[float | None, float | None] = (None, None)
    for item in value.split(","):
        if not item.strip():
            continue
        head, params = _sf_params(item)
        try:
            quota = float(params["q"]) if "q" in params else float(head)
            window = float(params.get("w", "1"))
        except ValueError:
            continue
        if quota <= 0 or window <= 0:
            continue
        rps = quota / window
        if best[0] is None or rps < best[0]:
            best = (rps, None)  # a quota per window says nothing about the burst allowed
    if len(_policy_cache) < 1024:  # a server sends few distinct policies; bound it anyway
        _policy_cache[value] = best
    return best


def parse_ratelimit(value: str) -> tuple[float | None, float | None]:
    """``RateLimit: "name";r=<remaining>;t=<seconds>`` → (remaining, reset seconds); the
    member with the least remaining wins."""
    remaining: float | None = None
    reset: float | None = None
    for item in value.split(","):
        if not item.strip():
            continue
        _, params = _sf_params(item)
        try:
            r = float(params["r"]) if "r" in params else None
            t = float(params["t"]) if "t" in params else None
        except ValueError:
            continue
        if r is not None and (remaining is None or r < remaining):
            remaining, reset = r, t
    return remaining, reset


def parse_retry_after(value: str | None, now_epoch: float | None = None) -> float | None:
    """``Retry-After`` (delta-seconds or HTTP-date) → seconds to wait, or ``None``."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now_epoch is None else now_epoch
    return max(0.0, when.timestamp() - now)


def _number(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def read_server_limit(headers: Mapping[str, str], status: int) -> ServerLimit:
    """Extract the rate-limit facts from response headers (case-insensitive mapping).

    Understood: the IETF draft's ``RateLimit-Policy`` / ``RateLimit`` (and the older separate
    ``RateLimit-Remaining`` / ``-Reset``), GitHub's ``X-RateLimit-Limit`` / ``-Remaining`` /
    ``-Reset`` (epoch seconds), and ``Retry-After`` on a 429 or 503.
    """
    rps = burst = remaining = reset = None
    policy = headers.get("ratelimit-policy")
    if policy:
        rps, burst = parse_policy(policy)
    current = headers.get("ratelimit")
    if current:
        remaining, reset = parse_ratelimit(current)
    if remaining is None:
        remaining = _number(headers.get("ratelimit-remaining"))
        reset = _number(headers.get("ratelimit-reset"))
    if remaining is None:
        remaining = _number(headers.get("x-ratelimit-remaining"))
        if remaining is not None:
            burst = _number(headers.get("x-ratelimit-limit"))
            epoch = _number(headers.get("x-ratelimit-reset"))
            if epoch is not None:
                reset = max(0.0, epoch - time.time())
    retry_after = parse_retry_after(headers.get("retry-after")) if status in (429, 503) else None
    return ServerLimit(rps, burst, remaining, reset, retry_after)


class AdaptiveRateLimiter:
    """Token bucket with an adaptive fill rate and a ``Retry-After`` block."""

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.enabled = enabled
        self._clock = clock
        self._sleep = sleep
        self.policy_rate = max(MIN_RATE, rate)
        self.max_rate = self.policy_rate * 10
        self._rate = self.policy_rate
        self._capacity = max(1.0, math.floor(burst * BURST_SHARE))
        self._tokens = self._capacity
        self._last = clock()
        self._blocked_until = 0.0
        self._epoch = 0
        self._ceiling: float | None = None  # advertised rps * HEADROOM
        self._throttled = False
        self._last_max_rate = self._rate
        self._last_throttle = 0.0
        self._k = 0.0
        self.throttle_events = 0
        self.blocks = 0
        self.holds = 0
        self._estimator = RefillEstimator()
        self._learned: float | None = None  # refill rate learned from remaining readings
        self._last_probe = 0.0
        self._admitted: collections.deque[float] = collections.deque(maxlen=8192)
        self._admitted_floor: float | None = None  # rate learned from a 429 (no headers)
        self._floor_is_low_bound = False
        self._block_ended = 0.0
        self._last_preempt = -PREEMPT_INTERVAL
        self._resumed_at = -math.inf  # when sending resumed after the last block
        self._last_refusal: float | None = None  # the last 429 for an empty bucket

    # -- what callers see -------------------------------------------------------------------
    @property
    def rate(self) -> float:
        """The current send rate (requests per second); ``0`` when disabled means unlimited."""
        return self._rate if self.enabled else 0.0

    @property
    def blocked_until(self) -> float:
        """Monotonic time before which nothing is sent (``Retry-After``)."""
        return self._blocked_until

    async def acquire(self) -> float:
        """Wait for a send slot; returns the monotonic time the request may go out."""
        if not self.enabled:
            return self._clock()
        # Bounded: each pass either returns or re-plans after an epoch change; epochs only change
        # on server signals, so a few passes suffice. The cap keeps a pathological server finite.
        for _ in range(64):
            epoch = self._epoch
            wait = self._reserve()
            if wait <= 0:
                return self._clock()
            await self._sleep(wait)
            if epoch == self._epoch and self._clock() >= self._blocked_until:
                return self._clock()
        while self._clock() < self._blocked_until:  # last resort: still honour the block
            await self._sleep(self._blocked_until - self._clock())
        return self._clock()

    def on_response(self, status: int, headers: Mapping[str, str], sent_at: float) -> None:
        """Learn from a response: advertised limit, remaining quota, 429s and Retry-After."""
        if not self.enabled:
            return
        limit = read_server_limit(headers, status)
        now = self._clock()
        if status != 429 or (limit.remaining is not None and limit.remaining > 0):
            self._admitted.append(now)
        if limit.rps is not None:
            self._set_ceiling(limit.rps * HEADROOM, limit.burst, now)
        elif limit.remaining is not None:
            self._learn_from_remaining(limit, status, sent_at, now)
        if limit.remaining is not None and status != 429:
            self._refill(now)
            if self._tokens > limit.remaining:
                self._tokens = limit.remaining
        if status == 429:
            self._on_throttle(limit, sent_at, now)
        elif self._throttled and status < 400:
            self._set_rate(self._probe_rate(now), now)

    def _learn_from_remaining(
        self, limit: ServerLimit, status: int, sent_at: float, now: float
    ) -> None:
        assert limit.remaining is not None
        if limit.burst is not None:
            self._set_capacity(limit.burst, now)
        estimate = self._estimator.observe(
            now, limit.remaining, status=status, capacity=limit.burst
        )
        if estimate is not None:
            self._learned = estimate
            self._last_probe = now
            self._throttled = False  # the estimate replaces any 429-driven guess
            self._ceiling = estimate * HEADROOM
            self.max_rate = max(self.max_rate, self._ceiling)
            self._set_rate(self._ceiling, now)
        elif (
            self._learned is None
            and limit.remaining <= 0
            and status != 429  # a 5xx after the bucket took a token too
            and (now - self._last_preempt >= PREEMPT_INTERVAL or self._estimator.tiny)
        ):
            # Admitted (any answer but a 429) with nothing left and no rate known yet: the next
            # request at this pace
            # would be refused. Slow down now (once a while) instead of waiting for the 429,
            # and hold sending until the server's reset says a token is back (after every
            # such answer when the bucket is tiny: then one request per token is all there is).
            self._last_preempt = now
            if not self._estimator.tiny:
                # (A bucket of one or two always reads 0 after a request: no news in that.)
                self._on_throttle(ServerLimit(remaining=0.0), sent_at, now)
            if limit.reset_seconds:
                cap = limit.burst or self._estimator.capacity_seen or 1.0
                self.hold_for(min(MAX_HOLD_SECONDS, limit.reset_seconds / max(1.0, cap)))
                if self._estimator.tiny:
                    # The bucket refills ``cap`` tokens by its reset at the latest: never send
                    # faster than that while nothing better is known.
                    self._ceiling = max(MIN_RATE, cap / max(limit.reset_seconds, 0.05))
                    self._set_rate(min(self._rate, self._ceiling), now)
        elif self._learned is not None and self._estimator.saturated():
            # The bucket is full: the limit may have gone up. Raise the soft ceiling a little.
            dt = max(0.0, now - self._last_probe)
            self._last_probe = now
            assert self._ceiling is not None
            top = self._learned * PROBE_LIMIT
            self._ceiling = min(top, self._ceiling * (1 + PROBE_PER_SECOND * dt))
            self._set_rate(self._ceiling, now)

    def hold_for(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (the client's own caution, not a server's order)."""
        self.block_for(seconds)
        self.blocks -= 1  # counted apart: ``blocks`` are the server's Retry-After orders
        self.holds += 1

    def block_for(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (a server's ``Retry-After``)."""
        now = self._clock()
        until = now + min(seconds, MAX_WAIT_SECONDS)
        if until > self._blocked_until:
            self._block_ended = until
            self._refill(now)
            self._blocked_until = until
            # Forgive outstanding reservations: their owners re-plan after the block, spaced
            # at the current rate, instead of all firing together when it ends.
            self._tokens = 0.0
            self._epoch += 1
            self.blocks += 1

    # -- internals ----------------------------------------------------------------------------
    def _refill(self, now: float) -> None:
        start = max(self._last, self._blocked_until)
        if now > start:
            self._tokens = min(self._capacity, self._tokens + (now - start) * self._rate)
        if now > self._last:
            self._last = now

    def _reserve(self) -> float:
        now = self._clock()
        self._refill(now)
        self._tokens -= 1.0
        start = max(now, self._blocked_until)
        deficit = -self._tokens if self._tokens < 0 else 0.0
        return min(MAX_WAIT_SECONDS, start - now + deficit / self._rate)

    def _on_throttle(self, limit: ServerLimit, sent_at: float, now: float) -> None:
        admitted, low_bound = self._admitted_rate(sent_at, now)  # before a block moves it
        if limit.remaining is None or limit.remaining <= 0:
            self._last_refusal = now
        self._resumed_at = max(self._resumed_at, self._blocked_until)
        if limit.retry_after:
            self.block_for(limit.retry_after)
        # A 429 that left quota on the server (Remaining > 0) is a spike, not our rate: honour
        # Retry-After, keep the rate. A 429 for a request sent before the last cut says nothing
        # new: the cut already answered it, and cutting again would compound.
        if limit.remaining is not None and limit.remaining > 0:
            return
        if self._throttled and sent_at < self._last_throttle:
            return
        self.throttle_events += 1
        self._throttled = True
        # The probe-up clock starts when sending resumes: time spent blocked by Retry-After is
        # not time spent learning that the new rate is safe.
        self._last_throttle = max(now, self._blocked_until)
        if limit.rps is None and self._learned is None and admitted is not None:
            # Nobody says the rate: the server was admitting ``admitted`` per second while we
            # over-sent. Resume just under it and creep up slowly.
            self._admitted_floor = admitted
            # (A tiny bucket is paced by holds: growing fast would only fire queued requests
            # back to back into it.)
            self._floor_is_low_bound = low_bound and not self._estimator.tiny
            self._last_max_rate = admitted
            self._set_rate(admitted * ADMITTED_RESUME, now)
            return
        self._admitted_floor = None
        # Refused again within moments of resuming: far above the limit, cut deeper.
        beta = CUBIC_BETA if sent_at - self._resumed_at >= 0.5 else FAST_BETA
        self._last_max_rate = self._rate
        self._k = (self._last_max_rate * (1 - beta) / CUBIC_SCALE) ** (1 / 3)
        self._set_rate(self._rate * beta, now)

    def _admitted_rate(self, sent_at: float, now: float) -> tuple[float | None, bool]:
        """Requests the server admitted per second just before this 429; None when unknown.

        Over the last window since sending resumed (up to ``ADMITTED_WINDOW``); when that is
        too short to tell (refused moments after a block), over the span since the previous
        refusal instead: the bucket was empty at both ends, so what it admitted in between is
        what it refilled — at most R per second, less if it sat full during the block (an
        estimate that errs low, never high).
        """
        first = self._admitted[0] if self._admitted else sent_at
        start = max(sent_at - ADMITTED_WINDOW, self._block_ended, first)
        low_bound = False
        if sent_at - start < 0.5:
            previous = self._last_refusal
            if previous is None or now - previous > ADMITTED_WINDOW or now - previous < 0.5:
                return None, False
            start, low_bound = previous, True
        n = sum(1 for t in self._admitted if start < t <= now)
        return (n / (now - start) if n else None), low_bound

    def _probe_rate(self, now: float) -> float:
        if self._admitted_floor is not None:
            t = max(0.0, now - self._last_throttle)
            floor = self._admitted_floor
            if self._floor_is_low_bound:
                return floor * ADMITTED_RESUME * LOW_BOUND_GROWTH_PER_SECOND**t
            return floor * (ADMITTED_RESUME + ADMITTED_PROBE_PER_SECOND * t)
        return self._cubic_rate(now)

    def _cubic_rate(self, now: float) -> float:
        t = max(0.0, now - self._last_throttle)
        return CUBIC_SCALE * (t - self._k) ** 3 + self._last_max_rate

    def _set_capacity(self, burst: float, now: float) -> None:
        capacity = max(1.0, math.floor(burst * BURST_SHARE))
        if capacity != self._capacity:
            self._refill(now)
            self._capacity = capacity
            self._tokens = min(self._tokens, capacity)

    def _set_ceiling(self, ceiling: float, burst: float | None, now: float) -> None:
        if burst is not None:
            self._set_capacity(burst, now)
        if ceiling == self._ceiling:
            return
        self._ceiling = ceiling
        self.max_rate = max(self.max_rate, ceiling)
        target = self._probe_rate(now) if self._throttled else ceiling
        self._set_rate(target, now)

    def _set_rate(self, target: float, now: float) -> None:
        upper = self._ceiling if self._ceiling is not None else self.max_rate
        new = min(max(target, MIN_RATE), upper)
        if new == self._rate:
            return
        self._refill(now)
        if new < self._rate * 0.9:
            # A real cut: no burst at the old rate, and sleepers re-plan at the new rate.
            self._tokens = 0.0
            self._epoch += 1
        self._rate = new
