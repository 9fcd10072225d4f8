"""The console's live sampler: once a second, what the farm and the running scenario look like.

Each ``tick`` event carries cumulative counters (the farm's per service and tenant, the run's per
connector and workflow) and the topology: every node and edge with its error ratio over the last
:data:`~workflows.health.LIVE_WINDOW_SECONDS`, its band (healthy / degraded / failing / idle, by
the same thresholds and the same ratios as the Grafana topology) and its request rate.

Node ratios (as in ``grafana/gauntlet_dashboards/rules.py``): a synthetic API's share of non-2xx
answers; a connector's share of failed logical calls; a workflow's share of failed iterations.
Edges: API -> connector is HTTP attempts that were not 2xx; connector -> workflow is iterations.

Run lifecycle events come from the backend's run records: ``run`` when a run's status changes,
``verdict`` when its scorecard lands. Events of a run are stored for the run page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client import REGISTRY

from workflows.events import EventHub
from workflows.farm_client import FarmError, FarmSet
from workflows.health import LIVE_WINDOW_SECONDS, band_for

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
FAULTS_FAMILY = "gauntlet_farm_faults_injected_total"
#: A counter pair: (requests, errors).
Pair = tuple[float, float]


@dataclass
class RunBaseline:
    """Counters of the backend's process-wide metrics when a run started (figures are deltas)."""

    run_id: str
    attempts: dict[tuple[str, str], Pair]
    workflows: dict[tuple[str, str], Pair]


def read_registry() -> tuple[dict[tuple[str, str], Pair], dict[tuple[str, str], Pair]]:
    """(service, connector) -> HTTP attempts and non-2xx; (workflow, connector) -> iterations
    and failed ones, from this process's Prometheus registry (the runner records both)."""
    attempts: dict[tuple[str, str], list[float]] = {}
    workflows: dict[tuple[str, str], list[float]] = {}
    for family in REGISTRY.collect():
        if family.name == "aam_attempts":
            for s in family.samples:
                if s.name != "aam_attempts_total":
                    continue
                key = (s.labels.get("service", ""), s.labels.get("connector", ""))
                pair = attempts.setdefault(key, [0.0, 0.0])
                pair[0] += s.value
                if s.labels.get("result") != "2xx":
                    pair[1] += s.value
        elif family.name == "gauntlet_workflow_runs":
            for s in family.samples:
                if s.name != "gauntlet_workflow_runs_total":
                    continue
                key = (s.labels.get("workflow", ""), s.labels.get("connector", ""))
                pair = workflows.setdefault(key, [0.0, 0.0])
                pair[0] += s.value
                if s.labels.get("outcome") != "ok":
                    pair[1] += s.value
    return (
        {k: (v[0], v[1]) for k, v in attempts.items()},
        {k: (v[0], v[1]) for k, v in workflows.items()},
    )


def parse_faults(text: str) -> dict[str, dict[str, dict[str, int]]]:
    """service -> tenant -> kind -> faults injected, from a farm's Prometheus text."""
    from prometheus_client.parser import text_string_to_metric_families

    lines = "\n".join(line for line in text.splitlines() if line.startswith(FAULTS_FAMILY))
    out: dict[str, dict[str, dict[str, int]]] = {}
    for family in text_string_to_metric_families(lines + "\n"):
        for s in family.samples:
            if not s.name.startswith(FAULTS_FAMILY) or s.name.endswith("_created"):
                continue
            lab = s.labels
            if not s.value:
                continue
            tenants = out.setdefault(lab.get("service", ""), {})
            kinds = tenants.setdefault(lab.get("tenant", ""), {})
            kinds[lab.get("kind", "")] = kinds.get(lab.get("kind", ""), 0) + int(s.value)
    return out


def _delta(now: Pair, base: Pair | None) -> Pair:
    if base is None or now[0] < base[0]:  # a counter reset (or a series born after the base)
        return now
    return (now[0] - base[0], now[1] - base[1])


def _ratio_row(now: Pair, old: Pair | None, seconds: float) -> dict[str, Any]:
    total, errors = _delta(now, old)
    ratio = errors / total if total > 0 else None
    band = band_for(ratio)
    return {
        "state": band.state,
        "ratio": None if ratio is None else round(ratio, 4),
        "rate": round(total / seconds, 2) if seconds > 0 else 0.0,
    }


@dataclass
class TopologyWindow:
    """Recent counter samples; the topology is computed over the oldest one in the window."""

    window: float = float(LIVE_WINDOW_SECONDS)
    samples: deque[tuple[float, dict[str, Pair]]] = field(default_factory=deque)

    def add(self, t: float, counters: dict[str, Pair]) -> tuple[float, dict[str, Pair]]:
        """Remember ``counters`` at ``t``; returns the sample to compare with (oldest in window)."""
        self.samples.append((t, counters))
        while len(self.samples) > 1 and t - self.samples[1][0] >= self.window:
            self.samples.popleft()
        return self.samples[0]

    def clear(self) -> None:
        self.samples.clear()


def topology(
    members: dict[str, Any], counters: dict[str, Pair], old: dict[str, Pair], seconds: float
) -> dict[str, Any]:
    """Nodes and edges with their band; ``members`` lists who is on the map (idle or not)."""
    nodes = []
    for kind in ("svc", "conn", "wf"):
        for name in members[kind]:
            key = f"{kind}:{name}"
            row = _ratio_row(counters.get(key, (0.0, 0.0)), old.get(key), seconds)
            nodes.append({"id": key, "kind": kind, "title": name, **row})
    edges = []
    for source, target in members["edges"]:
        key = f"{source}->{target}"
        row = _ratio_row(counters.get(key, (0.0, 0.0)), old.get(key), seconds)
        edges.append({"id": key, "source": source, "target": target, **row})
    return {"window_seconds": LIVE_WINDOW_SECONDS, "nodes": nodes, "edges": edges}


def compact_connector(stats: dict[str, Any]) -> dict[str, Any]:
    """The figures the console charts for one connector (no secrets exist in stats anyway)."""
    failures = {str(k): int(v) for k, v in (stats.get("failures") or {}).items() if v}
    circuit = stats.get("circuit_state")
    return {
        "calls": int(stats.get("calls", 0)),
        "ok": int(stats.get("successes", 0)),
        "failures": failures,
        "attempts": int(stats.get("attempts", 0)),
        "retries": int(stats.get("retries", 0)),
        "token_refreshes": int(stats.get("token_refreshes", 0)),
        "rate_limited": int(stats.get("rate_limited", 0)),
        "dlq": int(stats.get("dlq_entries", 0)),
        "circuit": None if circuit is None else str(getattr(circuit, "value", circuit)),
    }


def verdict_payload(run_id: str, scorecard: dict[str, Any]) -> dict[str, Any]:
    """The ``verdict`` event: verdict, every invariant's status, the totals."""
    return {
        "run_id": run_id,
        "verdict": scorecard.get("verdict"),
        "scenario": scorecard.get("scenario"),
        "mode": scorecard.get("mode"),
        "profile": scorecard.get("profile"),
        "invariants": [
            {
                "name": inv.get("name"),
                "status": inv.get("status") or ("pass" if inv.get("passed") else "fail"),
                "detail": inv.get("detail"),
            }
            for inv in scorecard.get("invariants", [])
        ],
        "totals": scorecard.get("totals") or {},
        "dlq": scorecard.get("dlq") or {},
    }


class LiveSampler:
    """Samples the farm and the backend's runs once a second and publishes ``tick`` events."""

    def __init__(
        self,
        hub: EventHub,
        farm_urls: dict[str, str],
        admin_token: str | None,
        runs: Callable[[], dict[str, Any]],
    ) -> None:
        self.hub = hub
        #: None when the backend was given no farm URL (then every tick says so).
        self.farms = FarmSet(farm_urls, admin_token) if farm_urls else None
        self._runs = runs
        self._http = httpx.AsyncClient(timeout=5.0)
        self._window = TopologyWindow()
        self._status: dict[str, str] = {}
        self._baseline: RunBaseline | None = None
        self._members: dict[str, Any] = {"svc": [], "conn": [], "wf": [], "edges": []}
        self._task: asyncio.Task[None] | None = None
        #: The last tick (sent in ``hello`` so a new page has something to draw at once).
        self.last: dict[str, Any] | None = None
        #: The farm's per-tenant counters of the last tick (the services page; not streamed).
        self.tenants: dict[str, dict[str, Any]] = {}
        self.farm_error: str | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="console-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        await self._http.aclose()
        if self.farms is not None:
            await self.farms.close()

    async def _loop(self) -> None:
        for _ in range(10**9):  # bounded; ends with the backend
            started = time.monotonic()
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad sample must not end the live view
                log.exception("console sampler tick failed")
            await asyncio.sleep(max(0.05, TICK_SECONDS - (time.monotonic() - started)))

    async def farm_snapshot(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """(chaos, services status, faults) merged over every distinct farm."""
        chaos: dict[str, Any] = {"level": None, "services": {}}
        services: dict[str, Any] = {}
        faults: dict[str, Any] = {}
        if self.farms is None:
            raise FarmError("the backend was started without a farm URL")
        for url, client in self.farms.by_url().items():
            status = await client.status()
            c = status.get("chaos") or {}
            chaos["level"] = c.get("level") if chaos["level"] in (None, c.get("level")) else "mixed"
            chaos["services"].update(c.get("services") or {})
            services.update(status.get("services") or {})
            with contextlib.suppress(httpx.HTTPError):
                response = await self._http.get(f"{url}/metrics")
                if response.status_code == 200:
                    for sid, tenants in parse_faults(response.text).items():
                        faults.setdefault(sid, {}).update(tenants)
        return chaos, services, faults

    def _track_runs(self) -> dict[str, Any] | None:
        """Publish ``run``/``verdict`` events on status changes; the running record, if any."""
        active = None
        for rid, record in list(self._runs().items()):
            status = record.status
            if status == "running":
                active = record
            if self._status.get(rid) == status:
                continue
            self._status[rid] = status
            view = {
                "id": rid,
                "status": status,
                "scenario": record.scenario,
                "mode": record.mode,
                "profile": record.profile,
                "error": record.error,
            }
            self.hub.publish("run", view, run_id=rid if status != "queued" else None)
            if status == "done" and record.scorecard:
                self.hub.publish("verdict", verdict_payload(rid, record.scorecard), run_id=rid)
        return active

    async def tick(self) -> dict[str, Any]:
        """Take one sample and publish it."""
        now = time.time()
        try:
            chaos, services, faults = await self.farm_snapshot()
            self.farm_error = None
        except FarmError as exc:
            chaos, services, faults = {"level": None, "services": {}}, {}, {}
            self.farm_error = str(exc)
        record = self._track_runs()
        attempts, workflows = read_registry()
        if record is not None and (self._baseline is None or self._baseline.run_id != record.id):
            self._baseline = RunBaseline(record.id, attempts, workflows)
            self._members = {"svc": [], "conn": [], "wf": [], "edges": []}
            self._window.clear()
        base = self._baseline

        self.tenants = {sid: svc.get("tenants") or {} for sid, svc in services.items()}
        counters: dict[str, Pair] = {}
        service_rows: dict[str, Any] = {}
        for sid, svc in sorted(services.items()):
            tenants = svc.get("tenants") or {}
            calls = sum(int(t.get("calls", 0)) for t in tenants.values())
            ok = sum(int(t.get("2xx", 0)) for t in tenants.values())
            counters[f"svc:{sid}"] = (calls, calls - ok)
            service_rows[sid] = {
                "calls": calls,
                "errors": calls - ok,
                "schema_version": svc.get("schema_version"),
            }
        members = self._members
        members["svc"] = sorted(services)

        connectors: dict[str, Any] = {}
        wf_rows: dict[str, dict[str, Any]] = {}
        run_view = None
        if record is not None and base is not None:
            progress = record.progress or {}
            run_view = {
                "id": record.id,
                "scenario": record.scenario,
                "mode": record.mode,
                "profile": record.profile,
                "phase": progress.get("phase", "starting"),
                "elapsed": progress.get("elapsed", 0.0),
                "duration": progress.get("duration", 0.0),
                "writes_issued": progress.get("writes_issued", 0),
                "surfaced": progress.get("surfaced", {}),
            }
            for cid, stats in sorted((progress.get("connectors") or {}).items()):
                c = compact_connector(stats)
                connectors[cid] = c
                failed = sum(c["failures"].values())
                counters[f"conn:{cid}"] = (c["ok"] + failed, failed)
                if cid not in members["conn"]:
                    members["conn"].append(cid)
            for (service, cid), pair in attempts.items():
                if cid not in connectors:
                    continue
                total, errors = _delta(pair, base.attempts.get((service, cid)))
                counters[f"svc:{service}->conn:{cid}"] = (total, errors)
                connectors[cid]["service"] = service
                if (f"svc:{service}", f"conn:{cid}") not in members["edges"]:
                    members["edges"].append((f"svc:{service}", f"conn:{cid}"))
            for (wf, cid), pair in workflows.items():
                total, errors = _delta(pair, base.workflows.get((wf, cid)))
                if total <= 0 or cid not in connectors:
                    continue
                wf_rows.setdefault(wf, {})[cid] = {"runs": int(total), "errors": int(errors)}
                counters[f"conn:{cid}->wf:{wf}"] = (total, errors)
                if wf not in members["wf"]:
                    members["wf"].append(wf)
                if (f"conn:{cid}", f"wf:{wf}") not in members["edges"]:
                    members["edges"].append((f"conn:{cid}", f"wf:{wf}"))
            for wf, per_conn in wf_rows.items():
                counters[f"wf:{wf}"] = (
                    sum(r["runs"] for r in per_conn.values()),
                    sum(r["errors"] for r in per_conn.values()),
                )
        old_t, old = self._window.add(now, counters)
        seconds = max(now - old_t, TICK_SECONDS) if old is not counters else TICK_SECONDS
        data = {
            "run": run_view,
            "chaos": chaos,
            "farm_error": self.farm_error,
            "services": service_rows,
            "faults": faults,
            "connectors": connectors,
            "workflows": wf_rows,
            "topology": topology(members, counters, old if old is not counters else {}, seconds),
        }
        self.last = data
        self.hub.publish("tick", data, run_id=record.id if record is not None else None)
        return data
