"""The latency model: how long a service takes to answer, drawn per request from one uniform.

A service's ``network_profile.latency`` gives a floor (``base_ms``), a uniform jitter
(``jitter_ms``) and, when ``p50_ms``/``p99_ms`` are set, a lognormal term with that median and
99th percentile: most answers are quick, a few are very slow (the heavy tail real providers
have). Chaos levels and brownouts multiply the whole draw by a factor. One uniform ``w`` in
[0, 1) maps to one latency (inverse CDF), so the fault dice keep a fixed number of draws per
request and the same seed replays the same latencies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from farm.spec import Latency

#: z of the 99th percentile of a standard normal distribution.
Z99 = NormalDist().inv_cdf(0.99)
_STANDARD = NormalDist()
_EPSILON = 1e-12


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """Seconds of latency as a function of one uniform draw."""

    base: float = 0.0  # seconds
    jitter: float = 0.0  # seconds, times U(0, 1)
    median: float = 0.0  # seconds; 0 means no lognormal term
    sigma: float = 0.0  # of the underlying normal
    cap: float = 30.0  # seconds
    factor: float = 1.0  # chaos level / brownout multiplier

    @classmethod
    def from_spec(cls, latency: Latency, factor: float = 1.0) -> LatencyModel:
        """The model of a spec's ``latency`` block, scaled by ``factor``."""
        median = (latency.p50_ms or 0.0) / 1000.0
        sigma = 0.0
        if latency.p50_ms and latency.p99_ms:
            sigma = math.log(latency.p99_ms / latency.p50_ms) / Z99
        return cls(
            base=latency.base_ms / 1000.0,
            jitter=latency.jitter_ms / 1000.0,
            median=median,
            sigma=sigma,
            cap=latency.max_ms / 1000.0,
            factor=factor,
        )

    @property
    def zero(self) -> bool:
        """True when every draw is 0 (the data plane then never sleeps)."""
        return not (self.base or self.jitter or self.median)

    def scaled(self, factor: float) -> LatencyModel:
        """The same model with its draws multiplied by ``factor`` (a brownout)."""
        return LatencyModel(
            self.base, self.jitter, self.median, self.sigma, self.cap, self.factor * factor
        )

    def sample(self, w: float) -> float:
        """The latency (seconds) of uniform draw ``w`` in [0, 1)."""
        if self.zero:
            return 0.0
        seconds = self.base + self.jitter * w
        if self.median:
            if self.sigma:
                z = _STANDARD.inv_cdf(min(max(w, _EPSILON), 1.0 - _EPSILON))
                seconds += self.median * math.exp(self.sigma * z)
            else:
                seconds += self.median
        return min(self.cap, seconds * self.factor)

    def quantile(self, q: float) -> float:
        """The ``q`` quantile of the model (seconds), for documentation and tests."""
        return self.sample(q)


NO_LATENCY = LatencyModel()
