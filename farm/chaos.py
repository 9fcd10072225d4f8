"""Chaos levels and seeded fault decisions.

The effective fault rates of a (service, tenant) are its spec profile (error preset or explicit
probabilities, network profile) plus what the current chaos level adds. One decision per data
request comes from a ``random.Random`` seeded by ``(seed, service, tenant)`` and always consumes
exactly four draws, so the same seed and the same request sequence give the same faults.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, replace
from enum import StrEnum

from farm.latency import NO_LATENCY, LatencyModel
from farm.spec import BrownoutProfile, ErrorPreset, OutageProfile, ServiceSpec


class ChaosLevel(StrEnum):
    off = "off"
    calm = "calm"
    mild = "mild"
    storm = "storm"
    hell = "hell"


@dataclass(frozen=True, slots=True)
class LevelEffect:
    """What a chaos level adds to every service profile (see farm/README.md)."""

    extra_server_error: float
    extra_network: float  # connections cut mid-body
    extra_timeout: float
    rate_factor: float
    gauge: int
    extra_refused: float = 0.0  # connections reset before the request is read
    extra_slow_body: float = 0.0
    latency_factor: float = 1.0


LEVELS: dict[ChaosLevel, LevelEffect] = {
    ChaosLevel.off: LevelEffect(0.0, 0.0, 0.0, 1.0, 0),
    ChaosLevel.calm: LevelEffect(0.0, 0.0, 0.0, 1.0, 1),
    ChaosLevel.mild: LevelEffect(0.035, 0.005, 0.005, 1.0, 2, 0.005, 0.0, 1.0),
    ChaosLevel.storm: LevelEffect(0.125, 0.02, 0.02, 0.5, 3, 0.02, 0.01, 1.5),
    ChaosLevel.hell: LevelEffect(0.31, 0.05, 0.05, 0.2, 4, 0.05, 0.02, 2.0),
}
START_LEVEL = ChaosLevel.calm

#: Correlated faults a level brings to services whose spec sets none (farm/README.md).
LEVEL_BROWNOUTS: dict[ChaosLevel, BrownoutProfile] = {
    ChaosLevel.storm: BrownoutProfile(
        every_seconds=45, duration_seconds=4, extra_error_rate=0.25, latency_factor=4
    ),
    ChaosLevel.hell: BrownoutProfile(
        every_seconds=30, duration_seconds=5, extra_error_rate=0.3, latency_factor=5
    ),
}
LEVEL_OUTAGES: dict[ChaosLevel, OutageProfile] = {
    ChaosLevel.hell: OutageProfile(every_seconds=90, duration_seconds=2),
}


def weather_for(
    spec: ServiceSpec, level: ChaosLevel
) -> tuple[BrownoutProfile | None, OutageProfile | None]:
    """The brownout and outage parameters of ``spec`` at ``level`` (none at ``off``)."""
    if level is ChaosLevel.off:
        return None, None
    return spec.brownouts or LEVEL_BROWNOUTS.get(level), spec.outages or LEVEL_OUTAGES.get(level)


#: (server_error_rate, rate_limit_spike_rate) of each error preset; explicit values override.
PRESETS: dict[ErrorPreset, tuple[float, float]] = {
    ErrorPreset.none: (0.0, 0.0),
    ErrorPreset.mostly_ok: (0.005, 0.0),
    ErrorPreset.flaky_5xx: (0.05, 0.0),
    ErrorPreset.spiky_rate_limit: (0.005, 0.05),
    ErrorPreset.degraded: (0.08, 0.02),
}
SERVER_ERROR_CODES = (500, 502, 503)
#: What a gateway answers when it lost the backend's answer to a committed write.
GATEWAY_CODES = (502, 504)


class FaultKind(StrEnum):
    server_error = "server_error"  # 5xx before the handler: nothing committed
    rate_limit_spike = "rate_limit_spike"
    network = "network"  # response cut mid-body (FIN after a partial body)
    reset_mid_body = "reset_mid_body"  # response cut mid-body with a TCP RST
    refused = "refused"  # connection reset before the request was read: never happened
    timeout = "timeout"  # answer held past the client's read timeout
    slow_body = "slow_body"  # headers at once, body trickling
    commit_then_fail = "commit_then_fail"  # committed, then a drop or a stall-then-drop
    commit_then_5xx = "commit_then_5xx"  # committed, then a gateway 502/504
    outage = "outage"  # the service (or tenant) is down: refused during an outage window


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Effective probabilities and delays for one (service, tenant) at one chaos level."""

    server_error: float
    rate_limit_spike: float
    network: float
    timeout: float
    commit_then_fail_share: float
    timeout_delay: float
    latency: LatencyModel = NO_LATENCY
    refused: float = 0.0
    slow_body: float = 0.0
    slow_body_seconds: float = 3.0
    after_commit_gateway_share: float = 0.0

    @property
    def quiet(self) -> bool:
        """True when no fault and no latency can ever be drawn (the fault step can be skipped)."""
        return (
            not (
                self.server_error
                or self.rate_limit_spike
                or self.network
                or self.timeout
                or self.refused
                or self.slow_body
            )
            and self.latency.zero
        )

    def browned_out(self, extra_error: float, latency_factor: float) -> FaultRates:
        """These rates during a brownout: more 5xx and slower answers, together."""
        return replace(
            self,
            server_error=min(1.0, self.server_error + extra_error),
            latency=self.latency.scaled(latency_factor),
        )


QUIET = FaultRates(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def fault_rates(spec: ServiceSpec, tenant: str, level: ChaosLevel) -> FaultRates:
    """The rates a tenant of ``spec`` sees at ``level`` (``off`` ignores the spec profile)."""
    if level is ChaosLevel.off:
        return QUIET
    effect = LEVELS[level]
    errors = spec.error_profile_for(tenant)
    network = spec.network_profile_for(tenant)
    preset_5xx, preset_429 = PRESETS[errors.preset]
    base_5xx = preset_5xx if errors.server_error_rate is None else errors.server_error_rate
    spike = preset_429 if errors.rate_limit_spike_rate is None else errors.rate_limit_spike_rate
    return FaultRates(
        server_error=min(1.0, base_5xx + effect.extra_server_error),
        rate_limit_spike=spike,
        network=min(1.0, network.connection_drop_probability + effect.extra_network),
        timeout=min(1.0, network.timeout_probability + effect.extra_timeout),
        commit_then_fail_share=errors.commit_then_fail_share,
        timeout_delay=network.timeout_delay_seconds,
        latency=LatencyModel.from_spec(network.latency, effect.latency_factor),
        refused=min(1.0, network.dns_flakiness + network.tls_flakiness + effect.extra_refused),
        slow_body=min(1.0, network.slow_body_probability + effect.extra_slow_body),
        slow_body_seconds=network.slow_body_seconds,
        after_commit_gateway_share=errors.after_commit_gateway_share,
    )


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What the fault step decided for one request."""

    kind: FaultKind | None  # None: no fault
    status: int = 0  # for server_error and commit_then_5xx
    after_commit: bool = False  # writes only: commit first, then fail (drop, stall or 502/504)
    latency: float = 0.0  # seconds to wait before serving, faulted or not
    delay: float = 0.0  # timeout hold, or how long a slow body trickles


NO_FAULT = FaultDecision(None)


class FaultDice:
    """The seeded RNG of one (service, tenant)."""

    __slots__ = ("_rng",)

    def __init__(self, seed: int, service: str, tenant: str) -> None:
        digest = hashlib.blake2b(f"faults:{seed}:{service}:{tenant}".encode(), digest_size=16)
        self._rng = random.Random(int.from_bytes(digest.digest(), "big"))

    def roll(self, rates: FaultRates, is_write: bool) -> FaultDecision:
        """Decide this request's fault. Always four draws, whatever the outcome.

        ``u`` picks the kind (bands in a fixed order), ``v`` whether a write fault strikes after
        the commit, ``w`` the latency, ``x`` the variant (gateway or drop, FIN or RST).
        """
        rng = self._rng
        u, v, w, x = rng.random(), rng.random(), rng.random(), rng.random()
        latency = rates.latency.sample(w)
        after = is_write and v < rates.commit_then_fail_share
        edge = rates.server_error
        if u < edge:
            # Which 5xx: the position of u inside its band, so no extra draw is needed.
            status = SERVER_ERROR_CODES[min(2, int(u / edge * 3))]
            if after:
                if x < rates.after_commit_gateway_share:
                    gateway = GATEWAY_CODES[int(x / rates.after_commit_gateway_share * 2) % 2]
                    return FaultDecision(FaultKind.commit_then_5xx, gateway, True, latency)
                return FaultDecision(FaultKind.network, status, True, latency)
            return FaultDecision(FaultKind.server_error, status, False, latency)
        edge += rates.rate_limit_spike
        if u < edge:
            return FaultDecision(FaultKind.rate_limit_spike, 429, False, latency)
        edge += rates.refused
        if u < edge:
            return FaultDecision(FaultKind.refused, 0, False, latency)
        edge += rates.network
        if u < edge:
            kind = FaultKind.network if x < 0.5 else FaultKind.reset_mid_body
            return FaultDecision(kind, 0, after, latency)
        edge += rates.timeout
        if u < edge:
            return FaultDecision(FaultKind.timeout, 0, after, latency, rates.timeout_delay)
        edge += rates.slow_body
        if u < edge:
            return FaultDecision(FaultKind.slow_body, 0, False, latency, rates.slow_body_seconds)
        if latency > 0:
            return FaultDecision(None, 0, False, latency)
        return NO_FAULT


class ChaosState:
    """The farm-wide chaos level plus per-service overrides."""

    def __init__(self, services: list[str]) -> None:
        self._services = services
        self.level = START_LEVEL
        self.overrides: dict[str, ChaosLevel] = {}

    def level_for(self, service: str) -> ChaosLevel:
        """The level in force for ``service``."""
        return self.overrides.get(service, self.level)

    def set(self, level: ChaosLevel, service: str | None = None) -> None:
        """Set one service's level, or every service's (clearing per-service overrides)."""
        if service is None:
            self.level = level
            self.overrides.clear()
        else:
            self.overrides[service] = level

    def as_json(self) -> dict[str, object]:
        """The ``chaos`` part of ``GET /admin/status``."""
        return {
            "level": self.level.value,
            "services": {s: self.level_for(s).value for s in self._services},
        }
