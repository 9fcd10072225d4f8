"""What the workflows saw during a run: every logical operation and what came back, issued
writes, surfaced failures.

The invariant checker compares this journal with the farm's ledger. The journal only records
facts a workflow can observe (what it asked for, what came back); it never trusts the AAM's own
opinion of what happened on the wire.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from workflows.evidence import Operation, OperationKind

#: Records kept per read operation, and in all: enough to judge, bounded in memory.
MAX_RECORDS_PER_OPERATION = 5_000
MAX_RECORDS_KEPT = 400_000

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
class RunJournal:
    """Shared, append-only observations of one scenario run (single event loop: no locks)."""

    writes: dict[str, IssuedWrite] = field(default_factory=dict)
    #: (workflow, connector, error_class) -> count of failures that reached a workflow
    surfaced: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    #: (workflow, connector) -> iterations finished / finished without error
    iterations: Counter[tuple[str, str]] = field(default_factory=Counter)
    successes: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: Workflow copies stopped by a ``schema_drift`` refusal (a diagnostic).
    drift_refusals: int = 0
    #: Every logical operation the workflows handed to the AAM, in issue order (the judge's view).
    operations: list[Operation] = field(default_factory=list)
    records_kept: int = 0
    _scans: list[Operation] = field(default_factory=list)
    _scan_stride: int = 1
    _op_counter: int = 0

    def next_operation_id(self, prefix: str) -> str:
        """A fresh, run-unique operation id."""
        self._op_counter += 1
        return f"{prefix}-{self._op_counter:06d}"

    def begin(
        self,
        kind: OperationKind,
        *,
        workflow: str,
        connector: str,
        service: str,
        tenant: str,
        resource: str | None,
        op_id: str,
        require: list[str] | tuple[str, ...] = (),
        full_scan: bool = False,
        max_records: int | None = None,
        body: dict[str, Any] | None = None,
        lookup_value: str | None = None,
    ) -> Operation:
        """Record a logical operation as it is handed to the AAM."""
        op = Operation(
            op_id=op_id,
            kind=kind,
            workflow=workflow,
            connector=connector,
            service=service,
            tenant=tenant,
            resource=resource,
            started_at=time.time(),
            require=tuple(require),
            full_scan=full_scan,
            max_records=max_records,
            body=body,
            lookup_value=lookup_value,
        )
        self.operations.append(op)
        return op

    def finish(
        self,
        op: Operation,
        outcome: Literal["ok", "failed", "deferred", "cancelled"],
        *,
        error_class: str | None = None,
        records: list[dict[str, Any]] | None = None,
    ) -> None:
        """Record what came back. Single-record reads always keep their record; scans keep theirs
        within a memory bound, thinned evenly over the run (every 2nd, 4th... scan) rather than
        dropping the latest, so a client cannot flood its way out of being judged."""
        op.finished_at = time.time()
        op.outcome = outcome
        op.error_class = error_class
        if not records:
            return
        if op.kind != "scan":
            op.records = records[:MAX_RECORDS_PER_OPERATION]
            return
        self._scans.append(op)
        index = len(self._scans) - 1
        while self.records_kept + min(len(records), MAX_RECORDS_PER_OPERATION) > MAX_RECORDS_KEPT:
            self._scan_stride *= 2
            for i, kept in enumerate(self._scans[:-1]):
                if i % self._scan_stride and kept.records:
                    self.records_kept -= len(kept.records)
                    _not_judged(kept)
        if index % self._scan_stride:
            _not_judged(op)
            return
        if len(records) > MAX_RECORDS_PER_OPERATION:
            op.full_scan = False  # a truncated copy cannot prove completeness
            op.max_records = None
        op.records = records[:MAX_RECORDS_PER_OPERATION]
        self.records_kept += len(op.records)

    def issue_write(self, write: IssuedWrite) -> None:
        """Record a write before it is sent (so a crash mid-call still counts it)."""
        self.writes[write.operation_id] = write

    def surfaced_total(self, error_class: str) -> int:
        """How many failures of ``error_class`` reached any workflow."""
        return sum(n for (_, _, cls), n in self.surfaced.items() if cls == error_class)


def _not_judged(op: Operation) -> None:
    """Drop a scan's records (memory bound): it is no longer judged for content or completeness."""
    op.records = []
    op.full_scan = False
    op.max_records = None
