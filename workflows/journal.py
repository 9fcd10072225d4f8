"""What the workflows saw during a run: issued writes, surfaced failures, drift checks.

The invariant checker compares this journal with the farm's ledger. The journal only records
facts a workflow can observe (what it asked for, what came back); it never trusts the AAM's own
opinion of what happened on the wire.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

WriteOutcome = Literal["pending", "ok", "failed", "cancelled"]


@dataclass
class IssuedWrite:
    """One logical write a workflow issued (one operation id)."""

    operation_id: str
    connector: str
    service: str
    tenant: str
    resource: str
    lookup_field: str
    outcome: WriteOutcome = "pending"
    error_class: str | None = None
    #: The AAM answered that it parked this write in its dead-letter queue.
    deferred: bool = False


@dataclass
class DriftMismatch:
    """A value a workflow read that differs from the farm's ground truth."""

    connector: str
    resource: str
    record_id: str
    field: str
    expected: object
    got: object
    schema_version: int | None = None


@dataclass
class RunJournal:
    """Shared, append-only observations of one scenario run (single event loop: no locks)."""

    writes: dict[str, IssuedWrite] = field(default_factory=dict)
    #: (workflow, connector, error_class) -> count of failures that reached a workflow
    surfaced: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    #: (workflow, connector) -> iterations finished / finished without error
    iterations: Counter[tuple[str, str]] = field(default_factory=Counter)
    successes: Counter[tuple[str, str]] = field(default_factory=Counter)
    drift_values_checked: int = 0
    drift_refusals: int = 0
    drift_mismatches: list[DriftMismatch] = field(default_factory=list)
    drift_mismatch_count: int = 0
    _op_counter: int = 0

    def next_operation_id(self, prefix: str) -> str:
        """A fresh, run-unique operation id."""
        self._op_counter += 1
        return f"{prefix}-{self._op_counter:06d}"

    def issue_write(self, write: IssuedWrite) -> None:
        """Record a write before it is sent (so a crash mid-call still counts it)."""
        self.writes[write.operation_id] = write

    def mismatch(self, item: DriftMismatch) -> None:
        """Record a wrong value; keep a bounded sample for the scorecard."""
        self.drift_mismatch_count += 1
        if len(self.drift_mismatches) < 20:
            self.drift_mismatches.append(item)

    def surfaced_total(self, error_class: str) -> int:
        """How many failures of ``error_class`` reached any workflow."""
        return sum(n for (_, _, cls), n in self.surfaced.items() if cls == error_class)
