"""Unit tests of the policy pieces: backoff, retry budget, circuit breaker, rate limiter."""

from __future__ import annotations

import itertools
import math
import random
import time

import pytest

from aam.backoff import Backoff
from aam.circuit import CircuitBreaker, CircuitState
from aam.ratelimit import (
    AdaptiveRateLimiter,
    parse_policy,
    parse_retry_after,
    read_server_limit,
)
from aam.retry_budget import RetryBudget


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


# -- backoff -----------------------------------------------------------------------------------
def test_backoff_is_full_jitter_under_an_exponential_capped_ceiling():
    b = Backoff(base_seconds=0.1, cap_seconds=1.0)
    assert [b.ceiling(n) for n in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    rng = random.Random(1)
    delays = [b.delay(3, rng) for _ in range(2000)]
    assert all(0 <= d <= 0.8 for d in delays)
    # Full jitter: spread over the whole window, not bunched at the top.
    assert min(delays) < 0.05 and max(delays) > 0.75
    assert 0.3 < sum(delays) / len(delays) < 0.5


def test_backoff_ceiling_survives_huge_retry_numbers():
    assert Backoff(0.05, 2.0).ceiling(10_000) == 2.0


# -- retry budget ------------------------------------------------------------------------------
def test_retry_budget_stops_retries_in_an_outage_and_refills_on_success():
    budget = RetryBudget(capacity=10, retry_cost=1, timeout_cost=2, success_deposit=1)
    granted = sum(budget.try_withdraw() for _ in range(100))
    assert granted == 10  # a full outage gets at most `capacity` retries, not 100
    assert budget.denied == 90
    for _ in range(3):
        budget.deposit()
    assert budget.try_withdraw(timeout=True)  # costs 2 of the 3
    assert budget.try_withdraw()
    assert not budget.try_withdraw()


def test_retry_budget_never_exceeds_capacity():
    budget = RetryBudget(capacity=5)
    for _ in range(50):
        budget.deposit()
    assert budget.tokens == 5


# -- circuit breaker ---------------------------------------------------------------------------
def test_circuit_opens_on_a_failure_ratio_and_recovers_through_half_open():
    clock = FakeClock()
    cb = CircuitBreaker(window=10, min_calls=10, failure_ratio=0.8, open_seconds=1.0, clock=clock)
    for _ in range(2):
        cb.record_success()
    for _ in range(7):
        cb.record_failure("server_error")
    assert cb.state is CircuitState.closed  # 7/9, and fewer than min_calls
    cb.record_failure("timeout")  # 8/10
    assert cb.state is CircuitState.open
    assert not cb.allow()
    assert cb.last_failure_class == "timeout"
    clock.now += 1.0
    assert cb.state is CircuitState.half_open
    assert cb.allow()  # one probe
    assert not cb.allow()  # only one
    cb.record_success()
    assert cb.state is CircuitState.closed
    assert cb.allow()


def test_failed_probe_reopens_for_longer():
    clock = FakeClock()
    cb = CircuitBreaker(window=4, min_calls=4, failure_ratio=1.0, open_seconds=1.0, clock=clock)
    for _ in range(4):
        cb.record_failure("network_error")
    assert cb.state is CircuitState.open
    clock.now += 1.0
    assert cb.allow()
    cb.record_failure("network_error")
    assert cb.state is CircuitState.open
    clock.now += 1.5
    assert cb.state is CircuitState.open  # now open for 2 s
    clock.now += 0.5
    assert cb.state is CircuitState.half_open


def test_partial_failures_keep_the_circuit_closed():
    cb = CircuitBreaker(window=50, min_calls=20, failure_ratio=0.8)
    rng = random.Random(3)
    for _ in range(2000):
        if rng.random() < 0.5:
            cb.record_failure("server_error")
        else:
            cb.record_success()
    assert cb.state is CircuitState.closed


# -- header parsing ----------------------------------------------------------------------------
def test_policy_header_parsing():
    # IETF draft structured fields: quota per window; the tightest policy wins.
    assert parse_policy('"default";q=50;w=1') == (50.0, None)
    assert parse_policy('"burst";q=100;w=10, "day";q=86400;w=86400') == (1.0, None)
    assert parse_policy("100;w=10") == (10.0, None)  # the older bare form
    assert parse_policy("garbage") == (None, None)
    # No invented parameters: an rps= is not read.
    assert parse_policy('"default";q=10;w=1;rps=50') == (10.0, None)


def test_github_and_ietf_remaining_are_read():
    import time

    gh = {"x-ratelimit-limit": "10", "x-ratelimit-remaining": "3"}
    gh["x-ratelimit-reset"] = str(int(time.time()) + 2)
    limit = read_server_limit(gh, 200)
    assert (limit.remaining, limit.burst, limit.rps) == (3.0, 10.0, None)
    assert 0 < limit.reset_seconds <= 3
    ietf = read_server_limit({"ratelimit": '"default";r=7;t=2'}, 200)
    assert (ietf.remaining, ietf.reset_seconds) == (7.0, 2.0)


def test_retry_after_parsing_seconds_and_http_date():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now_epoch=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None


def test_server_limit_reads_retry_after_only_on_429_and_503():
    h = {"retry-after": "2", "ratelimit": '"default";r=0;t=1', "ratelimit-policy": '"d";q=5;w=1'}
    assert read_server_limit(h, 429).retry_after == 2.0
    assert read_server_limit(h, 200).retry_after is None
    assert read_server_limit(h, 200).remaining == 0.0


# -- adaptive rate limiter ---------------------------------------------------------------------
async def _send_times(limiter: AdaptiveRateLimiter, clock: FakeClock, n: int) -> list[float]:
    times = []
    for _ in range(n):
        times.append(await limiter.acquire())
    return times


async def test_limiter_paces_at_the_policy_rate_after_half_the_burst():
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(10, 10, clock=clock, sleep=clock.sleep)
    start = clock.now
    times = await _send_times(limiter, clock, 25)
    # 5 tokens up front (half the burst), then one every 0.1 s.
    assert times[4] == start
    assert times[-1] - start == pytest.approx(2.0, abs=1e-6)


async def test_limiter_follows_the_advertised_policy():
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(100, 10, clock=clock, sleep=clock.sleep)
    limiter.on_response(200, {"ratelimit-policy": '"default";q=20;w=1'}, clock.now)
    assert limiter.rate == pytest.approx(20 * 0.98)
    limiter.on_response(200, {"ratelimit-policy": '"default";q=20;w=2'}, clock.now)
    assert limiter.rate == pytest.approx(10 * 0.98)


async def test_retry_after_blocks_every_caller_of_the_connector():
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(100, 10, clock=clock, sleep=clock.sleep)
    t429 = clock.now
    limiter.on_response(429, {"retry-after": "2", "ratelimit-remaining": "0"}, clock.now)
    times = await _send_times(limiter, clock, 5)
    assert min(times) >= t429 + 2.0
    # After the block, sends are spaced at the (cut) rate, not released all at once.
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(g > 0 for g in gaps)


async def test_a_real_429_cuts_the_rate_and_cubic_probes_back_up():
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(50, 10, clock=clock, sleep=clock.sleep)
    limiter.on_response(429, {"ratelimit-remaining": "0"}, clock.now)
    assert limiter.rate == pytest.approx(35.0)  # beta = 0.7
    assert limiter.throttle_events == 1
    rates = []
    for _ in range(12):
        clock.now += 0.5
        limiter.on_response(200, {}, clock.now)
        rates.append(limiter.rate)
    assert rates == sorted(rates)  # monotone recovery
    assert rates[-1] > 50  # probes past the old maximum


async def test_stale_429s_from_before_a_cut_do_not_compound():
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(50, 10, clock=clock, sleep=clock.sleep)
    sent_before = clock.now
    clock.now += 0.01
    limiter.on_response(429, {"ratelimit-remaining": "0"}, sent_before)
    for _ in range(10):
        limiter.on_response(429, {"ratelimit-remaining": "0"}, sent_before)
    assert limiter.throttle_events == 1
    assert limiter.rate == pytest.approx(35.0)


async def test_a_429_spike_with_quota_left_keeps_the_rate():
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(50, 10, clock=clock, sleep=clock.sleep)
    limiter.on_response(429, {"ratelimit-remaining": "7", "retry-after": "1"}, clock.now)
    assert limiter.rate == 50
    assert limiter.blocked_until == clock.now + 1


async def test_disabled_limiter_never_waits_and_learns_nothing():
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(1, 1, enabled=False, clock=clock, sleep=clock.sleep)
    limiter.on_response(429, {"retry-after": "5", "ratelimit-remaining": "0"}, clock.now)
    times = await _send_times(limiter, clock, 50)
    assert set(times) == {1000.0}
    assert limiter.rate == 0.0


def test_a_probe_slot_released_without_outcome_can_be_taken_again():
    clock = FakeClock()
    cb = CircuitBreaker(window=4, min_calls=4, failure_ratio=1.0, open_seconds=1.0, clock=clock)
    for _ in range(4):
        cb.record_failure("timeout")
    clock.now += 1.0
    assert cb.allow()
    assert not cb.allow()
    cb.release_probe()  # e.g. the probe's caller was cancelled
    assert cb.allow()


class SimulatedServer:
    """A server-side token bucket (R rps, burst B) that answers like the farm in one of its
    header styles (farm/ratelimit_headers.py): ietf, github, retry_after or none."""

    def __init__(self, rate: float, burst: float, now: float, style: str) -> None:
        self.rate, self.burst, self.tokens, self.last = rate, burst, burst, now
        self.style = style

    def answer(self, now: float) -> tuple[int, dict[str, str]]:
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        allowed = self.tokens >= 1
        if allowed:
            self.tokens -= 1
        left = int(self.tokens)
        reset = math.ceil((self.burst - self.tokens) / self.rate)
        headers: dict[str, str] = {}
        if self.style == "ietf":
            headers["ratelimit-policy"] = f'"default";q={self.rate:g};w=1'
            headers["ratelimit"] = f'"default";r={left};t={reset}'
        elif self.style == "github":
            headers["x-ratelimit-limit"] = f"{self.burst:.0f}"
            headers["x-ratelimit-remaining"] = str(left)
            headers["x-ratelimit-reset"] = str(math.ceil(time.time() + reset))
        if allowed:
            return 200, headers
        if self.style != "none":
            headers["retry-after"] = str(max(1, math.ceil((1 - self.tokens) / self.rate)))
        return 429, headers


async def _simulate(limiter, clock, server, seconds: float) -> tuple[int, int]:
    ok = limited = 0
    end = clock.now + seconds
    for _ in range(100_000):  # bounded; ends on simulated time
        if clock.now >= end:
            break
        sent = await limiter.acquire()
        status, headers = server.answer(sent)
        limiter.on_response(status, headers, sent)
        if status == 429:
            limited += 1
        else:
            ok += 1
    return ok, limited


#: (goodput floor as a share of R, 429-share ceiling) per header style, for a client that was
#: told a wrong limit (100 rps) or none at all (issue 9's targets; simulated time, no sleeping).
STYLE_TARGETS = {
    "ietf": (0.95, 0.02),
    "github": (0.95, 0.02),
    "retry_after": (0.90, 0.05),
}


@pytest.mark.parametrize("published", [True, False], ids=["told-100", "told-nothing"])
@pytest.mark.parametrize("style", sorted(STYLE_TARGETS))
async def test_limiter_converges_on_an_unknown_server_limit(style, published):
    from aam.policy import UNPUBLISHED_START_BURST, UNPUBLISHED_START_RPS

    clock = FakeClock()
    # The server allows 50 rps (burst 10); the client believes 100, or was told nothing.
    if published:
        limiter = AdaptiveRateLimiter(100, 20, clock=clock, sleep=clock.sleep)
    else:
        limiter = AdaptiveRateLimiter(
            UNPUBLISHED_START_RPS, UNPUBLISHED_START_BURST, clock=clock, sleep=clock.sleep
        )
    server = SimulatedServer(50, 10, clock.now, style)
    # Learning (a wrong or missing limit) costs the first seconds; the targets are for after.
    learning = await _simulate(limiter, clock, server, 10)
    ok, limited = await _simulate(limiter, clock, server, 60)
    goodput, share = ok / 60, limited / (ok + limited)
    floor, ceiling = STYLE_TARGETS[style]
    assert goodput >= floor * 50, (goodput, share, learning)
    assert share <= ceiling, (goodput, share, limited)
    assert limiter.rate <= 60
