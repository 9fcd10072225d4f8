"""The evidence a verdict rests on, as plain data.

Two sources only (DESIGN.md, "The judge trusts only evidence the AAM cannot shape"):

* what the **farm** observed: every attempt it answered (:class:`FarmAttempt`, from its attempt
  log), every write it committed (:class:`CommittedWrite`, from its ledger, with a body hash),
  every token it issued and every token it invalidated (:class:`TokenFacts`), the drift steps that
  fired and the version history of every record (:class:`RecordTruth`);
* what the **workflows** received back through the contract (:class:`Operation`): the outcome of
  each logical operation, the records a read returned and the body a write asked for.

The AAM's own labels, counters, DLQ and logs never appear here; the scorecard shows them as
diagnostics. A logical operation is tied to the farm's attempts by something the runner controls
in the request: the ``gauntlet_op`` query parameter of a read (the farm ignores it, keeps it in
``next`` links and records it) and the lookup-field value of a write.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

#: The query parameter that ties a read's attempts to its logical operation (aam/README.md).
OP_PARAM = "gauntlet_op"

OperationKind = Literal["get", "scan", "write"]
#: ``deferred``: the AAM said the write is parked in its DLQ for a later replay.
OperationOutcome = Literal["pending", "ok", "failed", "deferred", "cancelled"]

#: Farm answers and transport faults a retry can fix.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
TRANSPORT_FAULTS = frozenset({"network", "timeout", "refused", "reset", "slow_body"})


def canonical_sha256(body: dict[str, Any]) -> str:
    """The hash the farm's ledger keeps of a committed body (sorted keys, compact JSON)."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass
class Operation:
    """One logical operation a workflow asked of the AAM, and what came back."""

    op_id: str
    kind: OperationKind
    workflow: str
    connector: str
    service: str
    tenant: str
    resource: str | None
    started_at: float  # Unix time the workflow handed the operation to the AAM
    finished_at: float | None = None  # Unix time the outcome came back
    outcome: OperationOutcome = "pending"
    #: The AAM's label for a failure: a diagnostic, never evidence.
    error_class: str | None = None
    #: Reads: records received, in v1 field names (bounded by the runner).
    records: list[dict[str, Any]] = field(default_factory=list)
    #: Reads: the v1 fields the workflow relied on (the AAM must refuse rather than omit them).
    require: tuple[str, ...] = ()
    #: Scans: the workflow asked for the whole collection, or for the first ``max_records``.
    full_scan: bool = False
    max_records: int | None = None
    #: Writes: what the workflow asked to write (v1 field names) and its lookup value.
    body: dict[str, Any] | None = None
    lookup_value: str | None = None

    @property
    def completed(self) -> bool:
        return self.outcome in ("ok", "failed", "deferred")


@dataclass(frozen=True)
class FarmAttempt:
    """One request the farm answered (or dropped), from its attempt log."""

    at: float  # Unix time the farm received it
    service: str
    tenant: str | None
    method: str
    path: str
    #: The operation marker: ``gauntlet_op`` of a read, the lookup value of a write.
    op: str | None
    status: int | None  # None when the farm answered with a transport fault
    transport: str | None = None  # network | timeout | refused | reset | slow_body
    fault: str | None = None  # the fault the farm injected, if any
    committed: bool = False
    retry_after: float | None = None  # seconds the farm asked the client to wait
    credential: str | None = None  # a non-secret id of the token or key used
    rate_limited: bool = False  # refused by the token bucket (not an injected spike)
    duration: float | None = None  # seconds the farm took from arrival to its answer
    #: Refused by authentication (the farm's ``refusal`` says so); None: the row did not say
    #: (a farm from before the column), so it is inferred from the status.
    auth_refused: bool | None = None
    #: The quota left that the farm's rate-limit headers told the client (None: the service
    #: sends none, the request never reached the bucket, or an older farm did not say).
    remaining: int | None = None

    @property
    def rate_limit_answer(self) -> bool:
        """The bucket's refusal or an injected spike, whatever status the service's dialect
        gives it (429, or 403 like GitHub's and Salesforce's)."""
        return self.rate_limited or self.fault == "rate_limit_spike"

    @property
    def transient(self) -> bool:
        """A fault a retry could fix: a transport fault, a rate-limit answer (whatever its
        status) or a transient status."""
        if self.transport is not None or self.rate_limit_answer:
            return True
        return self.status is not None and self.status in TRANSIENT_STATUSES

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and self.transport is None


@dataclass(frozen=True)
class CommittedWrite:
    """One effect in the farm's ledger."""

    service: str
    tenant: str
    resource: str
    record_id: str
    lookup_value: str | None
    idempotency_key: str | None
    body_sha256: str
    committed_at: float


@dataclass(frozen=True)
class RecordVersion:
    """One version of one record: valid from ``valid_from`` until the next version's start."""

    version: int
    valid_from: float
    fields: dict[str, Any]


@dataclass
class RecordTruth:
    """The farm's ground truth for one (service, tenant, resource): every record, every version.

    ``created_at`` is when a record appeared (0 for records present from the start).
    """

    service: str
    tenant: str
    resource: str
    versions: dict[str, list[RecordVersion]] = field(default_factory=dict)
    created_at: dict[str, float] = field(default_factory=dict)

    def current(self, record_id: str, at: float) -> RecordVersion | None:
        """The version in force at ``at`` (the newest one that started at or before it)."""
        found = None
        for v in self.versions.get(record_id, ()):
            if v.valid_from <= at:
                found = v
        return found

    def versions_between(self, record_id: str, start: float, end: float) -> list[RecordVersion]:
        """Versions that were in force at some moment of [start, end]."""
        out = []
        history = self.versions.get(record_id, [])
        for i, v in enumerate(history):
            next_start = history[i + 1].valid_from if i + 1 < len(history) else math.inf
            if v.valid_from <= end and next_start >= start:
                out.append(v)
        return out

    def ids_existing_at(self, at: float) -> set[str]:
        return {rid for rid, t in self.created_at.items() if t <= at} | {
            rid for rid in self.versions if rid not in self.created_at
        }


@dataclass(frozen=True)
class TokenFacts:
    """What the farm knows about one (service, tenant)'s OAuth tokens during the run."""

    issued: int = 0  # tokens the farm issued
    invalidations: int = 0  # tokens it expired or rotated while they were in use
    answered_401: int = 0  # data requests refused for a bad, expired or rotated token


@dataclass(frozen=True)
class DriftFact:
    """A drift step that fired: from then on ``field`` of ``resource`` looks different."""

    service: str
    resource: str
    field: str
    action: str
    at: float  # Unix time it fired


@dataclass
class ConnectorLimits:
    """The rate a connector was entitled to, and how many workflow copies drove it."""

    connector: str
    service: str
    tenant: str
    allowed_rps: float
    burst: int
    copies: int = 1
    #: The service sends rate-limit headers (remaining, reset): a client told that nothing is
    #: left may wait for the reset, so under-use is judged there only while it never was.
    advertises_limits: bool = False


@dataclass
class JudgeEvidence:
    """Everything the invariants look at for one finished run."""

    started_at: float
    finished_at: float
    operations: list[Operation]
    attempts: list[FarmAttempt]
    writes: list[CommittedWrite]
    truth: dict[tuple[str, str, str], RecordTruth]
    tokens: dict[tuple[str, str], TokenFacts]
    drift: list[DriftFact]
    limits: list[ConnectorLimits]
    #: Operations of these kinds ran (so their invariants were exercised if anything happened).
    replayed: bool = False  # the runner replayed the DLQ after the chaos

    @property
    def duration(self) -> float:
        return max(1e-9, self.finished_at - self.started_at)

    def attempts_by_op(self) -> dict[str, list[FarmAttempt]]:
        """The farm's attempts grouped by operation marker (in arrival order)."""
        out: dict[str, list[FarmAttempt]] = defaultdict(list)
        for a in sorted(self.attempts, key=lambda a: a.at):
            if a.op is not None:
                out[a.op].append(a)
        return out

    def attempts_by_tenant(self) -> dict[tuple[str, str], list[FarmAttempt]]:
        out: dict[tuple[str, str], list[FarmAttempt]] = defaultdict(list)
        for a in sorted(self.attempts, key=lambda a: a.at):
            if a.tenant is not None:
                out[(a.service, a.tenant)].append(a)
        return out

    def completed(self) -> list[Operation]:
        return [op for op in self.operations if op.completed]


def records_by_id(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(r.get("id")): r for r in records}
