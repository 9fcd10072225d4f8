"""The fault mix each chaos level really produces, brownouts and outages included.

Correlated faults are laid out in time (a brownout every ~45 s), so a few seconds of traffic
say little about a level's error share. :func:`measure` drives the farm's own fault step
(:class:`farm.pipeline.InjectFault`, the code that serves real requests) over simulated time
on a manual clock: ``seconds`` of traffic at ``rps`` per tenant, reads and writes, and counts
what each request got. ``make bench-farm`` prints it; a test holds the levels to the seed's
figures (about 5 / 20 / 50 % errors).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from farm.chaos import ChaosLevel, FaultKind
from farm.pipeline import Call, InjectFault
from farm.routes import RouteMatch
from farm.spec import ServiceSpec
from farm.state import Farm

#: A quiet service (no faults of its own, no rate limit in the way): only the level speaks.
MIX_SPEC: dict[str, Any] = {
    "id": "mix",
    "base_path": "/mix/v1",
    "auth": {"type": "api_key"},
    "rate_limit": {"max_rps": 100_000, "burst": 100_000},
    "error_profile": {"preset": "none"},
    "resources": [
        {
            "name": "items",
            "endpoints": [
                {"method": "GET", "path": "/items", "paginated": True},
                {"method": "POST", "path": "/items"},
            ],
        }
    ],
    "schema": {"fields": {"items": {"id": "id", "name": "name"}}},
    "tenants": [{"id": "acme"}, {"id": "globex"}],
}
#: Kinds a client sees as a failed attempt (a slow body arrives whole: slow, not failed).
ERROR_KINDS = frozenset(FaultKind) - {FaultKind.slow_body}


class ManualClock:
    """A farm clock that only moves when told to."""

    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class LevelMix:
    """What one level produced."""

    level: str
    requests: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    writes: int = 0
    writes_failed_after_commit: int = 0

    @property
    def error_share(self) -> float:
        errors = sum(n for k, n in self.kinds.items() if k in ERROR_KINDS)
        return errors / self.requests if self.requests else 0.0

    def share(self, *kinds: str) -> float:
        return sum(self.kinds[k] for k in kinds) / self.requests if self.requests else 0.0


def measure(
    level: ChaosLevel,
    *,
    seconds: float = 900.0,
    rps: float = 20.0,
    write_every: int = 5,
    seed: int = 42,
    spec: ServiceSpec | None = None,
) -> LevelMix:
    """Drive the fault step for ``seconds`` of simulated traffic at ``level``."""
    service_spec = spec or ServiceSpec.model_validate(MIX_SPEC)
    clock = ManualClock()
    farm = Farm([service_spec], seed=seed, clock=clock)  # type: ignore[arg-type]
    try:
        farm.set_chaos(level)
        step = InjectFault(farm)
        service = farm.services[service_spec.id]
        routes = {r.resource.name: r for r in _routes(farm)}
        match = RouteMatch(routes[service_spec.resources[0].name], None)
        mix = LevelMix(level.value)
        n = 0
        gap = 1.0 / rps
        for _ in range(int(seconds * rps)):
            clock.advance(gap)
            for tenant in service.tenants.values():
                n += 1
                method = "POST" if n % write_every == 0 else "GET"
                call = Call(service, match, method, "/", {}, {}, b"", clock.now())
                call.tenant = tenant
                step(call)
                kind = call.fault.kind
                mix.requests += 1
                mix.kinds[kind.value if kind else "ok"] += 1
                if method == "POST":
                    mix.writes += 1
                    mix.writes_failed_after_commit += call.fault.after_commit
        return mix
    finally:
        from farm import metrics

        metrics.COLLECTOR.forget(farm)


def _routes(farm: Farm) -> list[Any]:
    out = []
    for spec in farm.specs.values():
        for resource in spec.resources:
            path = spec.base_path + resource.endpoints[0].path
            match = farm.routes.match(path)
            if match is not None:
                out.append(match.route)
    return out
