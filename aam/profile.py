"""AAM profiles: which defences a connector runs with.

``full`` runs every defence; ``naive`` runs none (a plain HTTP client with a fixed timeout);
``sdk-default`` is what a typical vendor SDK does out of the box: a few retries with exponential
backoff on 5xx, 429 and network errors (POSTs included, without idempotency keys), ``Retry-After``
honoured per call, the OAuth token refreshed when it expires and on a 401 — and no client-side
pacing, no idempotency keys, no circuit breaker, no DLQ, no drift mapping. ``full`` minus named
defences lets the runner show what each single defence is worth.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Defence(StrEnum):
    """One switchable resilience behaviour of a connector."""

    rate_adaptation = "rate_adaptation"  # client-side token bucket that adapts to 429/RateLimit
    token_refresh = "token_refresh"  # proactive refresh before expiry and refresh-and-retry on 401
    retries = "retries"  # backoff with full jitter, attempt cap, retry budget
    idempotency = "idempotency"  # Idempotency-Key, local key store, lookup before re-POST
    circuit_breaker = "circuit_breaker"  # per-connector closed/open/half-open
    drift_mapping = "drift_mapping"  # detect drift, map renamed/retyped fields, refuse the rest
    dead_letter = "dead_letter"  # failed writes go to the DLQ instead of being dropped


class ProfileBase(StrEnum):
    full = "full"
    naive = "naive"
    sdk_default = "sdk-default"


#: The attempts an SDK makes by default (e.g. AWS SDKs' standard mode: 3).
SDK_DEFAULT_MAX_ATTEMPTS = 3


class AamProfile(BaseModel):
    """``base`` plus the defences switched off on top of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: ProfileBase = ProfileBase.full
    disable: list[Defence] = Field(default_factory=list)

    @property
    def defences(self) -> frozenset[Defence]:
        if self.base is ProfileBase.naive:
            return frozenset()
        if self.base is ProfileBase.sdk_default:
            return frozenset({Defence.retries, Defence.token_refresh}) - frozenset(self.disable)
        return frozenset(Defence) - frozenset(self.disable)

    @property
    def max_attempts(self) -> int | None:
        """A cap on attempts per call below the rate policy's, or None."""
        return SDK_DEFAULT_MAX_ATTEMPTS if self.base is ProfileBase.sdk_default else None

    @property
    def retries_writes_blindly(self) -> bool:
        """Retry a POST after an ambiguous failure without a key or a lookup (an SDK's habit)."""
        return self.base is ProfileBase.sdk_default

    def has(self, defence: Defence) -> bool:
        return defence in self.defences

    @property
    def label(self) -> str:
        if self.base is not ProfileBase.full or not self.disable:
            return self.base.value
        return "full-" + "-".join(sorted(d.value for d in self.disable))

    @classmethod
    def parse(cls, text: str) -> AamProfile:
        """Parse ``full``, ``naive`` or ``full-<defence>[-<defence>...]`` / ``full,-retries``."""
        text = text.strip()
        if text in ("full", "naive", "sdk-default"):
            return cls(base=ProfileBase(text))
        if text.startswith("full-"):
            rest = text[len("full-") :]
            names = [n for n in rest.replace(",", " ").split() if n]
            if len(names) == 1 and names[0] not in Defence.__members__:
                # allow full-retries-circuit_breaker style
                names = _split_defences(names[0])
            return cls(base=ProfileBase.full, disable=[Defence(n) for n in names])
        raise ValueError(
            f"unknown AAM profile {text!r}: expected 'full', 'naive', 'sdk-default' or "
            "'full-<defence>' "
            f"with defence one of {', '.join(d.value for d in Defence)}"
        )


def _split_defences(text: str) -> list[str]:
    out: list[str] = []
    parts = text.split("-")
    for part in parts:
        if part not in Defence.__members__:
            raise ValueError(
                f"unknown defence {part!r}: expected one of {', '.join(d.value for d in Defence)}"
            )
        out.append(part)
    return out
