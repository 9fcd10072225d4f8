"""Schema drift: a service's schedule of field changes, fired by call count or elapsed time.

Records are stored in version-1 shape; a response renders them through the steps fired so far
(``rename``, ``remove``, ``add``, ``retype``). Steps fire in schedule order (the spec validator
replays them in that order, so a later step may name a field an earlier one renamed). POST bodies
may use any version's names and types: :meth:`DriftSchedule.to_canonical` maps them back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from farm.records import Record, RecordGenerator
from farm.spec import DriftAction, DriftStep, ServiceSpec


def retype(value: Any, target: str) -> Any:
    """Convert ``value`` to ``target`` (string | integer | number | boolean); ``None`` stays."""
    if value is None:
        return None
    if target == "string":
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    if target == "boolean":
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1", "yes", "y", "on")
        return bool(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if target == "integer":
        return int(number) if number == number and abs(number) != float("inf") else None
    return number


#: v1 field kind -> the plain type a value of that kind has, for mapping retyped bodies back.
_KIND_TYPES = {"integer": "integer", "number": "number", "amount": "number", "boolean": "boolean"}


def _v1_type(kind: str) -> str:
    return _KIND_TYPES.get(kind, "string")


@dataclass(frozen=True, slots=True)
class DriftEvent:
    """A step that fired: the ``drift_events`` entry of the ledger."""

    service: str
    version: int
    action: str
    resource: str
    field: str
    to: str | None
    type: str | None
    at_call: int
    at_seconds: float

    def as_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "version": self.version,
            "action": self.action,
            "resource": self.resource,
            "field": self.field,
            "to": self.to,
            "type": self.type,
            "at_call": self.at_call,
            "at_seconds": round(self.at_seconds, 3),
        }


class DriftSchedule:
    """One service's drift: calls counted, steps fired, records rendered at the current version."""

    def __init__(self, spec: ServiceSpec, generator: RecordGenerator, started: float) -> None:
        self.service = spec.id
        self.base_version = spec.schema_.version
        self._fields = spec.schema_.fields
        self._steps = list(spec.drift_schedule)
        self._generator = generator
        self.started = started
        self.calls = 0
        self.fired = 0
        self.events: list[DriftEvent] = []
        self._renderers: dict[tuple[str, int], list[Callable[[Record], None]]] = {}
        self._reverse = {r: self._reverse_plan(r) for r in self._fields}
        self._due_calls = self._due_at = 0.0  # the next step's triggers (see _next_due)
        self._next_due()

    @property
    def version(self) -> int:
        """The schema version currently served."""
        return self.base_version + self.fired

    def reset(self, generator: RecordGenerator, started: float) -> None:
        """Back to version 1, zero calls, clock restarted."""
        self._generator = generator
        self.started = started
        self.calls = 0
        self.fired = 0
        self.events.clear()
        self._renderers.clear()
        self._next_due()

    def advance(self, now: float) -> int:
        """Fire every step whose trigger has been reached (in order); the version in force."""
        steps = self._steps
        while self.fired < len(steps):
            step = steps[self.fired]
            elapsed = now - self.started
            due = (step.after_calls is not None and self.calls >= step.after_calls) or (
                step.after_seconds is not None and elapsed >= step.after_seconds
            )
            if not due:
                break
            self.fired += 1
            self.events.append(
                DriftEvent(
                    self.service,
                    self.version,
                    step.action.value,
                    step.resource,
                    step.field,
                    step.to,
                    step.type,
                    self.calls,
                    elapsed,
                )
            )
        self._next_due()
        return self.version

    def _next_due(self) -> None:
        """When :meth:`advance` next has work: the call count and farm time the next step is due
        at (``inf`` for a trigger the step lacks, or when every step fired), so a data call
        compares two numbers. The time is a microsecond early: :meth:`advance` decides exactly."""
        step = self._steps[self.fired] if self.fired < len(self._steps) else None
        inf = float("inf")
        self._due_calls = inf if step is None or step.after_calls is None else step.after_calls
        seconds = None if step is None else step.after_seconds
        self._due_at = inf if seconds is None else self.started + seconds - 1e-6

    def on_call(self, now: float) -> int:
        """The drift step of a data call: fire what is due, count the call, return the version.

        Step ``after_calls: N`` means N calls are served in the old shape; call N+1 sees the new.
        """
        if self.calls >= self._due_calls or now >= self._due_at:
            version = self.advance(now)
        else:
            version = self.base_version + self.fired
        self.calls += 1
        return version

    # -- rendering -------------------------------------------------------------------------

    def render_many(self, resource: str, records: list[Record]) -> list[Record]:
        """``records`` (version-1 shape) as the current version shows them."""
        steps = self._renderer(resource)
        if not steps:
            return records
        out = []
        for record in records:
            copy = dict(record)
            for apply in steps:
                apply(copy)
            out.append(copy)
        return out

    def render(self, resource: str, record: Record) -> Record:
        """One record as the current version shows it."""
        return self.render_many(resource, [record])[0]

    def _renderer(self, resource: str) -> list[Callable[[Record], None]]:
        key = (resource, self.fired)
        plan = self._renderers.get(key)
        if plan is None:
            plan = [
                self._apply(step) for step in self._steps[: self.fired] if step.resource == resource
            ]
            self._renderers[key] = plan
        return plan

    def _apply(self, step: DriftStep) -> Callable[[Record], None]:
        field = step.field
        if step.action is DriftAction.rename:
            to = step.to
            assert to is not None

            def rename(r: Record) -> None:
                if field in r:
                    r[to] = r.pop(field)

            return rename
        if step.action is DriftAction.remove:

            def remove(r: Record) -> None:
                r.pop(field, None)

            return remove
        if step.action is DriftAction.add:
            kind = step.type or "string"
            service, resource, generator = self.service, step.resource, self._generator

            def add(r: Record) -> None:
                if field not in r:
                    r[field] = generator.value(kind, "drift", service, resource, r.get("id"), field)

            return add
        target = step.type or "string"

        def convert(r: Record) -> None:
            if field in r:
                r[field] = retype(r[field], target)

        return convert

    # -- writes ----------------------------------------------------------------------------

    def _reverse_plan(self, resource: str) -> list[tuple[str, str, str | None]]:
        """(name in some version, v1 name, v1 type if it was retyped) for every drifted field."""
        v1 = self._fields[resource]
        origin = {name: name for name in v1}  # current name -> v1 name (None for added fields)
        plan: list[tuple[str, str, str | None]] = []
        for step in self._steps:
            if step.resource != resource:
                continue
            if step.action is DriftAction.rename:
                assert step.to is not None
                source = origin.pop(step.field, None)
                if source is not None:
                    origin[step.to] = source
                    plan.append((step.to, source, None))
            elif step.action is DriftAction.retype:
                source = origin.get(step.field)
                if source is not None:
                    plan.append((step.field, source, _v1_type(v1[source])))
        return plan

    def to_canonical(self, resource: str, body: Record) -> Record:
        """A POST body in any version's names/types -> version-1 names/types."""
        out = dict(body)
        for name, source, v1_type in reversed(self._reverse[resource]):
            if name != source and name in out and source not in out:
                out[source] = out.pop(name)
            if v1_type is not None and source in out:
                converted = retype(out[source], v1_type)
                if converted is not None:
                    out[source] = converted
        return out
