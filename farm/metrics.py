"""The farm's Prometheus metrics, declared once (names and labels are a contract: farm/README.md).

They live in the farm's own registry so a process that embeds the farm next to other components
serves only ``gauntlet_farm_*`` on the farm's ``/metrics``. Tenant labels are tenant ids (never a
credential); requests that cannot be pinned on a tenant use ``UNATTRIBUTED``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)
#: Tenant label for a refused request whose credential names no tenant of that service.
UNATTRIBUTED = "_unattributed"

REQUESTS = Counter(
    "gauntlet_farm_requests_total",
    "Data requests answered, by HTTP status (code=network for dropped connections).",
    ["service", "tenant", "code"],
    registry=REGISTRY,
)
REQUEST_DURATION = Histogram(
    "gauntlet_farm_request_duration_seconds",
    "Time to answer a data request.",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
FAULTS = Counter(
    "gauntlet_farm_faults_injected_total",
    "Faults injected, by kind.",
    ["service", "tenant", "kind"],
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "gauntlet_farm_rate_limited_total",
    "Requests refused by the token bucket.",
    ["service", "tenant"],
    registry=REGISTRY,
)
TOKENS_ISSUED = Counter(
    "gauntlet_farm_tokens_issued_total",
    "OAuth2 access tokens issued.",
    ["service", "tenant"],
    registry=REGISTRY,
)
AUTH_FAILURES = Counter(
    "gauntlet_farm_auth_failures_total",
    "401/403 answers by reason (expired, rotated, unknown, missing, wrong_tenant).",
    ["service", "tenant", "reason"],
    registry=REGISTRY,
)
WRITES_COMMITTED = Counter(
    "gauntlet_farm_writes_committed_total",
    "Write effects committed in the ledger.",
    ["service", "tenant"],
    registry=REGISTRY,
)
IDEMPOTENT_REPLAYS = Counter(
    "gauntlet_farm_idempotent_replays_total",
    "Repeated Idempotency-Keys answered from the store.",
    ["service", "tenant"],
    registry=REGISTRY,
)
SCHEMA_VERSION = Gauge(
    "gauntlet_farm_schema_version",
    "Schema version currently served.",
    ["service"],
    registry=REGISTRY,
)
CHAOS_LEVEL = Gauge(
    "gauntlet_farm_chaos_level",
    "Chaos level: 0 off, 1 calm, 2 mild, 3 storm, 4 hell.",
    ["service"],
    registry=REGISTRY,
)
RATE_LIMIT_RPS = Gauge(
    "gauntlet_farm_rate_limit_rps",
    "Effective token-bucket refill rate (after chaos).",
    ["service", "tenant"],
    registry=REGISTRY,
)
SERVICE_INFO = Gauge(
    "gauntlet_farm_service_info",
    "One series per served service (value 1).",
    ["service", "auth_type", "base_path"],
    registry=REGISTRY,
)

#: Label values pre-created for every (service, tenant) so the series exist at zero.
MAIN_CODES = (
    "200",
    "201",
    "400",
    "401",
    "403",
    "404",
    "422",
    "429",
    "500",
    "502",
    "503",
    "network",
)
FAULT_KINDS = ("server_error", "rate_limit_spike", "network", "timeout", "commit_then_fail")
AUTH_REASONS = ("expired", "rotated", "unknown", "missing", "wrong_tenant")
