"""Schema drift: notice when records stop looking like the spec's version 1, map them back.

A :class:`SchemaGuard` knows each resource's version-1 fields and kinds. For each record it
builds (once per distinct key set, then cached) a :class:`MappingPlan`: which observed field is
which v1 field — from configured mappings, or inferred for an obvious rename (one missing v1
field, one similar-named newcomer of a compatible type). Values whose type changed are coerced
back when that is exact (``"12.5"`` → ``12.5``); anything that cannot be mapped without
guessing raises :class:`~aam.errors.SchemaDrift` if the caller relies on it. Wrong data is never
returned silently.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aam.bugs import Bugs
from aam.descriptor import ResourceDescriptor
from aam.errors import SchemaDrift

_NUMBER_KINDS = frozenset({"amount", "number"})
_INT_RE = re.compile(r"^[+-]?\d+$")
_FLOAT_RE = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")
#: Names this similar (difflib ratio) count as an obvious rename.
RENAME_SIMILARITY = 0.6


@dataclass(frozen=True)
class DriftEvent:
    """One detected change, recorded once per (resource, field, action, observed shape)."""

    resource: str
    field: str
    action: str  # mapped | retyped | refused
    observed: str  # the observed name (rename) or type name (retype)
    schema_version: str | None = None


@dataclass(frozen=True)
class MappingPlan:
    """How to turn records with one particular key set back into v1 names."""

    renames: Mapping[str, str]  # observed name -> v1 name
    missing: frozenset[str]  # v1 fields absent and not mapped
    identity: bool  # keys are exactly the v1 names: nothing to rename


class _Uncoercible(Exception):
    pass


def _kind_accepts(kind: str, value: Any) -> bool:
    if value is None:
        return True
    if kind in _NUMBER_KINDS:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "id" or kind.startswith("ref:"):
        return isinstance(value, str | int) and not isinstance(value, bool)
    return isinstance(value, str)


def _coerce(kind: str, value: Any) -> Any:
    """Convert a retyped value back to ``kind`` exactly, or raise ``_Uncoercible``."""
    if kind in _NUMBER_KINDS:
        if isinstance(value, str):
            text = value.strip()
            if _INT_RE.match(text):
                return int(text)
            if _FLOAT_RE.match(text):
                return float(text)
        raise _Uncoercible
    if kind == "integer":
        if isinstance(value, str) and _INT_RE.match(value.strip()):
            return int(value.strip())
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _Uncoercible
    if kind == "boolean":
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
            return bool(value)
        raise _Uncoercible
    # String kinds retyped to numbers or booleans lose their text form: refuse to guess.
    raise _Uncoercible


def _another_field(kinds: Mapping[str, str], name: str) -> str:
    """The bug of ``Bugs.rename_into_wrong_field``: the next v1 field of the same kind family
    (alphabetically, never ``id``), else the field itself."""
    others = sorted(n for n in kinds if n not in ("id", name))
    return others[0] if others else name


def _similar(v1_name: str, observed: str) -> bool:
    if v1_name in observed or observed in v1_name:
        return True
    return difflib.SequenceMatcher(None, v1_name, observed).ratio() >= RENAME_SIMILARITY


@dataclass
class _Route:
    pattern: re.Pattern[str]
    resource: str
    is_item: bool


@dataclass
class SchemaGuard:
    """Per-connector drift detection and mapping for one service's resources (paths relative
    to the descriptor's ``base_url``)."""

    resources: Mapping[str, ResourceDescriptor]
    mappings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    enabled: bool = True
    connector_id: str | None = None
    #: Documented bug switches (the judge's mutant suite only).
    bugs: Bugs = field(default_factory=Bugs)

    def __post_init__(self) -> None:
        self.fields: dict[str, dict[str, str]] = {
            name: dict(r.fields) for name, r in self.resources.items() if r.fields
        }
        self._plans: dict[tuple[str, frozenset[str]], MappingPlan] = {}
        self._seen_events: set[tuple[str, str, str, str]] = set()
        self._routes: list[_Route] = []
        for name, resource in self.resources.items():
            for path, is_item in ((resource.collection, False), (resource.item, True)):
                if path is None:
                    continue
                regex = re.escape(path.rstrip("/") or "/").replace(re.escape("{id}"), r"[^/]+")
                self._routes.append(_Route(re.compile(regex + "/?$"), name, is_item))
        self._route_cache: dict[str, tuple[str, bool] | None] = {}
        self._v1_keys = {r: frozenset(f) for r, f in self.fields.items()}
        #: (resource, X-Schema-Version) pairs seen with clean, exactly-v1 pages.
        self._verified: set[tuple[str, str]] = set()

    def route(self, path: str) -> tuple[str, bool] | None:
        """(resource, is_item) for a request path (query string ignored), ``None`` if unknown."""
        path = path.split("?", 1)[0]
        if path in self._route_cache:
            return self._route_cache[path]
        found: tuple[str, bool] | None = None
        for r in self._routes:
            if r.pattern.match(path):
                found = (r.resource, r.is_item)
                break
        if len(self._route_cache) < 4096:  # item paths are many; bound the cache
            self._route_cache[path] = found
        return found

    def normalise_body(
        self,
        path: str,
        body: Any,
        require: Iterable[str] | None,
        schema_version: str | None,
        events: list[DriftEvent],
    ) -> Any:
        """Map a decoded response body back to v1 names.

        New detections are appended to ``events`` (also when ``SchemaDrift`` is raised, so the
        caller can record what was refused).
        """
        if not self.enabled:
            return body
        where = self.route(path)
        if where is None or not isinstance(body, dict):
            return body
        resource, is_item = where
        if resource not in self.fields:
            return body
        required = frozenset(require) if require is not None else frozenset(self.fields[resource])
        if is_item or "data" not in body:
            return self._record(resource, body, required, schema_version, events)
        records = body.get("data")
        if not isinstance(records, list):
            return body
        if self._trusted_page(resource, records, required, schema_version, events):
            return body
        mapped = [self._record(resource, r, required, schema_version, events) for r in records]
        if all(a is b for a, b in zip(mapped, records, strict=True)):
            if schema_version is not None and not events:
                self._verified.add((resource, schema_version))
            return body
        out = dict(body)
        out["data"] = mapped
        return out

    def normalise_record(
        self,
        resource: str,
        record: dict[str, Any],
        require: Iterable[str] | None,
        events: list[DriftEvent],
    ) -> dict[str, Any]:
        """Map one record of ``resource`` (e.g. a lookup result); see :meth:`normalise_body`."""
        if not self.enabled or resource not in self.fields:
            return record
        required = frozenset(require) if require is not None else frozenset(self.fields[resource])
        result: dict[str, Any] = self._record(resource, record, required, None, events)
        return result

    # -- internals ----------------------------------------------------------------------------
    def _trusted_page(
        self,
        resource: str,
        records: list[Any],
        required: frozenset[str],
        version: str | None,
        events: list[DriftEvent],
    ) -> bool:
        """Fast path: a page of a schema version already verified clean needs only key checks.

        Drift applies to every record of a version alike, so after one fully checked clean page
        of (resource, version), each later page checks every record's keys and the first
        record's values; any difference sends the page down the full path.
        """
        if version is None or (resource, version) not in self._verified or not records:
            return False
        v1 = self._v1_keys[resource]
        for record in records:
            if not isinstance(record, dict) or record.keys() != v1:
                return False
        first = records[0]
        return self._record(resource, first, required, version, events) is first and not events

    def _record(
        self,
        resource: str,
        record: Any,
        required: frozenset[str],
        version: str | None,
        events: list[DriftEvent],
    ) -> Any:
        if not isinstance(record, dict):
            return record
        kinds = self.fields[resource]
        keys = frozenset(record)
        plan = self._plans.get((resource, keys))
        if plan is None:
            plan = self._plan(resource, keys)
            self._plans[(resource, keys)] = plan
            for observed, v1 in plan.renames.items():
                self._event(events, DriftEvent(resource, v1, "mapped", observed, version))
        lost = plan.missing & required
        if lost:
            name = sorted(lost)[0]
            self._event(events, DriftEvent(resource, name, "refused", "missing", version))
            raise SchemaDrift(
                f"{resource}: field(s) {', '.join(sorted(lost))} missing from the response "
                "and no mapping found",
                connector_id=self.connector_id,
                reason="missing_field",
            )
        out: dict[str, Any] | None = None if plan.identity else {}
        bugs = self.bugs
        for key, value in record.items():
            name = plan.renames.get(key, key)
            if key in plan.renames and bugs.none_for_renamed:
                value = None
            elif key in plan.renames and bugs.rename_into_wrong_field:
                name = _another_field(kinds, name)
            kind = kinds.get(name)
            if kind is not None and not _kind_accepts(kind, value):
                try:
                    value = _coerce(kind, value)
                except _Uncoercible:
                    observed = type(value).__name__
                    if name in required:
                        refused = DriftEvent(resource, name, "refused", observed, version)
                        self._event(events, refused)
                        raise SchemaDrift(
                            f"{resource}.{name}: expected {kind}, got {observed} "
                            f"{value!r:.40}; cannot convert exactly",
                            connector_id=self.connector_id,
                            reason="retyped_field",
                        ) from None
                    if out is None:
                        out = dict(record)
                    out.pop(key, None)  # better absent than wrong
                    continue
                if bugs.round_retyped_numbers and isinstance(value, float):
                    value = float(round(value))
                was = type(record[key]).__name__
                self._event(events, DriftEvent(resource, name, "retyped", was, version))
                if out is None:
                    out = dict(record)
            if out is not None:
                out[name] = value
        return record if out is None else out

    def _plan(self, resource: str, keys: frozenset[str]) -> MappingPlan:
        kinds = self.fields[resource]
        v1 = frozenset(kinds)
        if keys == v1:
            return MappingPlan({}, frozenset(), True)
        renames: dict[str, str] = {}
        for observed, target in self.mappings.get(resource, {}).items():
            if observed in keys and target in v1 and target not in keys:
                renames[observed] = target
        missing = set(v1 - keys - set(renames.values()))
        extras = sorted(keys - v1 - set(renames))
        # Infer only obvious renames: a single similar-named candidate, used by no other field.
        for name in sorted(missing):
            candidates = [e for e in extras if _similar(name, e)]
            if len(candidates) == 1:
                renames[candidates[0]] = name
                extras.remove(candidates[0])
                missing.discard(name)
        return MappingPlan(renames, frozenset(missing), False)

    def _event(self, events: list[DriftEvent], event: DriftEvent) -> None:
        key = (event.resource, event.field, event.action, event.observed)
        if key not in self._seen_events:
            self._seen_events.add(key)
            events.append(event)
