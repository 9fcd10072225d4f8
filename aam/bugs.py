"""Documented bug switches of the reference AAM, for the judge's mutant suite only.

Each switch reproduces one realistic client bug inside the reference AAM's own policies (where a
wrapper over the contract cannot reach: retry timing, token handling, idempotency keys, drift
mapping). All are off by default; nothing but ``workflows.mutants`` and
``gauntlet aam serve --mutant`` turns them on.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Bugs(BaseModel):
    """Which realistic bugs the reference AAM should have (all off: the real thing)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ignore_retry_after: bool = Field(False, description="retry at once after a 429/503")
    no_backoff: bool = Field(False, description="no delay between attempts")
    max_attempts: int | None = Field(None, ge=1, le=50, description="attempts per call")
    no_retry_budget: bool = Field(False, description="retries never run out")
    token_per_attempt: bool = Field(False, description="fetch a new token before every attempt")
    fresh_key_per_attempt: bool = Field(False, description="a new Idempotency-Key per attempt")
    replay_without_key: bool = Field(False, description="DLQ replay drops the Idempotency-Key")
    round_retyped_numbers: bool = Field(
        False, description="a number retyped to a string is parsed back rounded to 0 decimals"
    )
    none_for_renamed: bool = Field(False, description="a renamed field maps to None")
    rename_into_wrong_field: bool = Field(
        False, description="a renamed field's value lands in another v1 field"
    )

    @property
    def any(self) -> bool:
        return self != Bugs()
