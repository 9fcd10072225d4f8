"""Deterministic, realistic records, generated lazily one index at a time.

A seeded record is a pure function of ``(seed, service, tenant, resource, index)``: its values come
from a ``random.Random`` seeded with a BLAKE2 hash of those five, so record 4711 can be produced
without producing the 4710 before it (1,000 specs cost nothing until a page is read) and the same
seed yields the same data on every start. Records created by POST are appended after the seeded
ones; the farm's store (``farm/durable.py``) keeps them across restarts.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from farm.living import LivingTable
from farm.spec import ServiceSpec

Record = dict[str, Any]

FIRST_NAMES = (
    "Ada", "Alan", "Amara", "Ana", "Arjun", "Beatriz", "Carlos", "Chen", "Dmitri", "Elena",
    "Emeka", "Fatima", "Grace", "Hana", "Hugo", "Ingrid", "Ivan", "Jamal", "Jin", "Kofi",
    "Lars", "Layla", "Lucia", "Mateo", "Mei", "Nadia", "Noah", "Olga", "Omar", "Priya",
    "Rafael", "Rosa", "Sakura", "Samir", "Sofia", "Tariq", "Umar", "Valentina", "Wei", "Yara",
)  # fmt: skip
LAST_NAMES = (
    "Abara", "Berg", "Castro", "Dubois", "Eriksen", "Fernandes", "Garcia", "Haddad", "Ito",
    "Jensen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Quinn",
    "Rossi", "Schmidt", "Tanaka", "Usman", "Varga", "Wagner", "Xu", "Yilmaz", "Zhang",
)  # fmt: skip
COMPANY_STEMS = (
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Tyrell",
    "Cyberdyne", "Soylent", "Wonka", "Gringotts", "Oscorp", "Aperture", "Massive", "Nakatomi",
    "Prestige", "Monarch", "Sterling",
)  # fmt: skip
COMPANY_SUFFIXES = ("Inc", "LLC", "GmbH", "Ltd", "Group", "Labs", "Systems", "Holdings")
CITIES = (
    "Amsterdam", "Austin", "Berlin", "Bogota", "Cairo", "Chicago", "Dublin", "Lagos", "Lisbon",
    "London", "Madrid", "Melbourne", "Mumbai", "Nairobi", "Osaka", "Paris", "Seoul", "Toronto",
)  # fmt: skip
COUNTRIES = ("US", "GB", "DE", "FR", "NL", "ES", "PT", "JP", "KR", "IN", "BR", "CA", "AU", "NG")
CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF")
STATUSES = ("active", "pending", "open", "paid", "closed", "draft", "archived")
WORDS = (
    "quarterly", "renewal", "invoice", "shipment", "upgrade", "migration", "priority",
    "customer", "backlog", "release", "onboarding", "audit", "refund", "latency", "cluster",
    "pipeline", "contract", "support", "billing", "report", "forecast", "integration",
)  # fmt: skip
DOMAIN_TLDS = ("com", "io", "net", "co", "dev")

#: ``updated_at`` of a seeded record that was never updated (living data).
SEEDED_UPDATED_AT = "2025-01-01T00:00:00.000Z"
#: Dates are spread over two years before this fixed instant, so records never depend on "now".
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
TWO_YEARS_S = 2 * 365 * 24 * 3600


def id_prefix(resource: str) -> str:
    """Short, Stripe-like id prefix for a resource: ``invoices`` -> ``inv``."""
    return resource[:3]


def record_id(resource: str, index: int) -> str:
    """The id of the record at ``index`` (0-based) of a resource: ``inv_000001``."""
    return f"{id_prefix(resource)}_{index + 1:06d}"


def index_of(resource: str, rid: str) -> int | None:
    """Inverse of :func:`record_id`; ``None`` for an id this resource never issues."""
    prefix, sep, digits = rid.partition("_")
    if (
        not sep
        or prefix != id_prefix(resource)
        or not (digits.isascii() and digits.isdigit())
        or len(digits) > 12
    ):
        return None
    index = int(digits) - 1
    return index if index >= 0 else None


def _rng(*parts: object) -> random.Random:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=16).digest()
    return random.Random(int.from_bytes(digest, "big"))


class _Person:
    """Coherent identity for one record: the email matches the name and the company."""

    __slots__ = ("company", "domain", "first", "last")

    def __init__(self, rng: random.Random) -> None:
        self.first = rng.choice(FIRST_NAMES)
        self.last = rng.choice(LAST_NAMES)
        stem = rng.choice(COMPANY_STEMS)
        self.company = f"{stem} {rng.choice(COMPANY_SUFFIXES)}"
        self.domain = f"{stem.lower()}.{rng.choice(DOMAIN_TLDS)}"


def generate_value(
    kind: str, rng: random.Random, person: _Person | None = None, refs: dict[str, int] | None = None
) -> Any:
    """One value of a field kind (see ``farm.spec.FIELD_KINDS``) drawn from ``rng``."""
    p = person or _Person(rng)
    if kind.startswith("ref:"):
        target = kind[4:]
        count = (refs or {}).get(target, 0)
        return record_id(target, rng.randrange(count)) if count > 0 else None
    match kind:
        case "string":
            return f"{rng.choice(WORDS)}-{rng.getrandbits(32):08x}"
        case "text":
            words = [rng.choice(WORDS) for _ in range(rng.randint(3, 7))]
            return " ".join(words).capitalize()
        case "name":
            return f"{p.first} {p.last}"
        case "first_name":
            return p.first
        case "last_name":
            return p.last
        case "email":
            return f"{p.first.lower()}.{p.last.lower()}@{p.domain}"
        case "company":
            return p.company
        case "phone":
            return f"+1-{rng.randint(200, 989)}-{rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"
        case "city":
            return rng.choice(CITIES)
        case "country":
            return rng.choice(COUNTRIES)
        case "url":
            return f"https://{p.domain}/{rng.choice(WORDS)}/{rng.randint(1, 9999)}"
        case "integer":
            return rng.randint(0, 10_000)
        case "number":
            return round(rng.uniform(0, 1000), 3)
        case "amount":
            return round(rng.lognormvariate(5.5, 1.2), 2)
        case "currency":
            return rng.choice(CURRENCIES)
        case "boolean":
            return rng.random() < 0.5
        case "date":
            return (EPOCH - timedelta(days=rng.randrange(730))).date().isoformat()
        case "datetime":
            moment = EPOCH - timedelta(seconds=rng.randrange(TWO_YEARS_S))
            return moment.isoformat().replace("+00:00", "Z")
        case "status":
            return rng.choice(STATUSES)
    raise ValueError(f"unknown field kind {kind!r}")


class RecordGenerator:
    """Seeded records of every (service, tenant, resource), produced on demand."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def record(
        self, spec: ServiceSpec, tenant: str, resource: str, index: int, refs: dict[str, int]
    ) -> Record:
        """Seeded record ``index`` of a resource; ``refs`` gives the seeded count per resource."""
        rng = _rng(self.seed, spec.id, tenant, resource, index)
        person = _Person(rng)
        out: Record = {}
        for name, kind in spec.schema_.fields[resource].items():
            out[name] = record_id(resource, index) if kind == "id" else (
                generate_value(kind, rng, person, refs)
            )  # fmt: skip
        return out

    def value(self, kind: str, *parts: object) -> Any:
        """A single deterministic value of ``kind`` keyed by ``parts`` (used for drift ``add``)."""
        rng = _rng(self.seed, *parts)
        return generate_value(kind, rng, _Person(rng), {})


class ResourceRecords:
    """One tenant's records of one resource: seeded ones (cached once generated) plus created ones.

    Seeded records are immutable, so caching them is safe; the cache only ever holds records a
    client has asked for.
    """

    def __init__(
        self,
        generator: RecordGenerator,
        spec: ServiceSpec,
        tenant: str,
        resource: str,
        refs: dict[str, int],
    ) -> None:
        self._generator = generator
        self._spec = spec
        self.tenant = tenant
        self.resource = resource
        self._refs = refs
        self.lookup_field = spec.resource(resource).lookup_field
        self.seeded = spec.resource(resource).records
        self._cache: list[Record | None] = []
        self.created: list[Record] = []
        self._lookup_index: dict[Any, list[int]] | None = None
        #: Living services' records carry ``version`` and ``updated_at`` (farm.living).
        self.versioned = spec.living is not None
        self.living: LivingTable | None = None

    def __len__(self) -> int:
        return self.seeded + len(self.created)

    def get(self, index: int) -> Record:
        """Record at ``index`` (seeded first, then created); IndexError past the end."""
        if index < 0:
            raise IndexError(index)
        if index >= self.seeded:
            return self.created[index - self.seeded]
        cache = self._cache
        if index >= len(cache):
            cache.extend([None] * (min(self.seeded, max(index + 1, 2 * len(cache))) - len(cache)))
        rec = cache[index]
        if rec is None:
            rec = self._generator.record(self._spec, self.tenant, self.resource, index, self._refs)
            if self.versioned:
                rec["version"] = 1
                rec["updated_at"] = SEEDED_UPDATED_AT
            cache[index] = rec
        return rec

    def replace(self, index: int, record: Record) -> None:
        """Put a new version of record ``index`` in place (living data)."""
        if index >= self.seeded:
            self.created[index - self.seeded] = record
            return
        self.get(index)  # the cache reaches that far
        self._cache[index] = record

    def slice(self, offset: int, limit: int) -> list[Record]:
        """Records ``offset .. offset+limit`` (fewer at the end)."""
        end = min(len(self), offset + limit)
        if end <= self.seeded:
            # Hot path: a page of seeded records that were all generated before.
            chunk = self._cache[offset:end]
            if len(chunk) == end - offset and None not in chunk:
                return chunk  # type: ignore[return-value]
        return [self.get(i) for i in range(offset, end)]

    def find(self, rid: str) -> Record | None:
        """The record with id ``rid`` or ``None``."""
        index = index_of(self.resource, rid)
        if index is None or index >= len(self):
            return None
        return self.get(index)

    def matching(self, field: str, value: str) -> list[int]:
        """Indexes of records whose ``field`` equals ``value`` (compared as strings)."""
        if field == self.lookup_field:
            if self._lookup_index is None:
                self._lookup_index = {}
                for i in range(len(self)):
                    self._index(i)
            return self._lookup_index.get(str(value), [])
        return [i for i in range(len(self)) if str(self.get(i).get(field)) == str(value)]

    def _index(self, i: int) -> None:
        assert self._lookup_index is not None and self.lookup_field is not None
        key = str(self.get(i).get(self.lookup_field))
        self._lookup_index.setdefault(key, []).append(i)

    def restore(self, record: Record) -> None:
        """Append a record a previous process created (its id is kept as it was)."""
        index = len(self)
        self.created.append(record)
        if self._lookup_index is not None:
            self._index(index)

    def create(self, body: Record, created_at: str) -> Record:
        """Append a record built from ``body`` with a fresh id and ``created_at``."""
        index = len(self)
        record = dict(body)
        record["id"] = record_id(self.resource, index)
        record["created_at"] = created_at
        if self.versioned:
            record["version"] = 1
            record["updated_at"] = created_at
        self.created.append(record)
        if self._lookup_index is not None:
            self._index(index)
        return record


class RecordStore:
    """Every (service, tenant, resource)'s records, created lazily on first touch."""

    def __init__(self, specs: dict[str, ServiceSpec], seed: int, started: float = 0.0) -> None:
        self._specs = specs
        self.started = started
        self.generator = RecordGenerator(seed)
        self._refs = {
            sid: {r.name: r.records for r in spec.resources} for sid, spec in specs.items()
        }
        self._tables: dict[tuple[str, str, str], ResourceRecords] = {}

    def table(
        self, service: str, tenant: str, resource: str, now: float | None = None
    ) -> ResourceRecords:
        """The records of one tenant's resource; with ``now``, living events due are applied."""
        key = (service, tenant, resource)
        table = self._tables.get(key)
        if table is None:
            spec = self._specs[service]
            table = ResourceRecords(self.generator, spec, tenant, resource, self._refs[service])
            if spec.living is not None:
                table.living = LivingTable(
                    spec.living, spec, tenant, resource, table, self.generator, self.started
                )
            self._tables[key] = table
        if now is not None and table.living is not None:
            table.living.advance(now)
        return table
