"""The scenario runner: set chaos, run workflows for the duration, reset chaos, replay the DLQ
once, then check the invariants against the farm's ledger and build the scorecard.

Order of a run (each step is what an operator would do by hand):

1. reset the farm(s) with the scenario's seed, set the chaos level;
2. run every workflow copy as a concurrent task until the deadline; read workflows stop at the
   deadline, write workflows finish their in-flight write (bounded grace) so every issued write
   has an outcome;
3. snapshot the AAM counters and the DLQ backlog, put chaos back to ``calm``;
4. replay the DLQ once (only when the profile has a DLQ) — with idempotency this must not
   duplicate anything, and the duplicate check below proves it;
5. read the farm's ledger and status, check the invariants, write the scorecard.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from aam.contract import AamUnderTest
from farm.loader import (
    DEFAULT_CONFIG_DIR,
    SpecLoadError,
    load_specs,
    parse_model,
    problems_from_validation,
    read_yaml,
)
from farm.ratelimit_headers import ADVERTISING_STYLES
from farm.spec import ServiceSpec
from workflows import metrics
from workflows.aam_http import AamContractError
from workflows.connector import ConnectorHandle, GroundTruth, WorkflowConfigError
from workflows.descriptors import DescriptorError, descriptor_for
from workflows.evidence import ConnectorLimits, JudgeEvidence
from workflows.farm_client import FarmBusy, FarmError, FarmSet
from workflows.farm_lease import FarmLeases, FarmUntrustworthy
from workflows.ground_truth import (
    committed_writes,
    drift_facts,
    farm_attempts,
    record_truth,
    resources_read,
    token_facts,
)
from workflows.invariants import RATE_FACTOR, check_all, unjudgeable
from workflows.journal import RunJournal
from workflows.library import get_workflow
from workflows.params import validate_params
from workflows.scenario import ScenarioSpec
from workflows.scorecard import ConnectorFigures, Scorecard, WorkflowFigures, verdict_of

#: The label a workflow failure gets when it is outside the AAM's error tree.
UNCLASSIFIED = "unclassified"
#: An operation the AAM has not answered this long after it was handed over never will: it is a
#: failure (the AAM hung), not an operation cut short by the end of the run.
OPERATION_DEADLINE_SECONDS = 10.0
#: DLQ replays after the run: one, and while entries stay pending (held back by an open
#: circuit), again after a pause longer than the reference AAM's longest open circuit.
REPLAY_ROUNDS = 2
REPLAY_PAUSE_SECONDS = 10.5

log = logging.getLogger(__name__)

#: Pause after a failed iteration: a real job does not spin on an error that came back at once
#: (an open circuit answers in microseconds), and an unpaced loop would only burn the CPU.
ERROR_PAUSE_SECONDS = 0.01
#: Longest wait for in-flight writes after the deadline before they are cancelled.
MAX_DRAIN_SECONDS = 15.0
#: Workflows whose in-flight iteration must finish (a cancelled write has no knowable outcome).
DRAINING_WORKFLOWS = frozenset({"idempotent_write"})


#: The scorecard's profile for an AAM driven over HTTP (``--aam-url``).
EXTERNAL_PROFILE = "external"


class ScenarioError(Exception):
    """The scenario cannot run as given (bad file, unknown service, unreachable farm): exit 2."""


@dataclass
class RunOptions:
    """Where the farm is and where the runner keeps its state."""

    farm_urls: dict[str, str]  # service id (or "*" for every service) -> farm base URL
    admin_token: str | None
    state_dir: Path = Path("var")
    configs: list[Path] = field(default_factory=lambda: [DEFAULT_CONFIG_DIR])
    progress_interval: float = 0.5
    replay_dlq: bool = True
    #: How long to wait for a farm another run holds (0: refuse at once, exit 2).
    wait_for_farm: float = 0.0
    #: An AAM under test served over HTTP (the contract's endpoints); None = the reference AAM
    #: in-process, built with the scenario's profile.
    aam_url: str | None = None
    aam_token: str | None = field(default=None, repr=False)
    #: A mutant of the reference AAM (workflows/mutants.py) instead of the scenario's profile.
    mutant: str | None = None


@dataclass
class RunProgress:
    """A live snapshot of a run (for the terminal display and ``GET /runs/{id}``)."""

    run_id: str
    scenario: str
    mode: str
    profile: str
    phase: str = "starting"
    elapsed: float = 0.0
    duration: float = 0.0
    connectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    surfaced: dict[str, int] = field(default_factory=dict)
    writes_issued: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


ProgressCallback = Callable[[RunProgress], Awaitable[None] | None]


def new_run_id() -> str:
    """A short, sortable-enough run id (also the prefix of every operation id in the run)."""
    return datetime.now(UTC).strftime("%m%d%H%M%S") + "-" + secrets.token_hex(3)


def load_scenario(path: Path) -> ScenarioSpec:
    """Load a scenario YAML; problems name the file and the field path."""
    if not path.exists():
        raise ScenarioError(f"{path}: no such file")
    data, problems = read_yaml(path)
    if not problems:
        spec, problems = parse_model(ScenarioSpec, data, str(path), "a scenario spec")
        if spec is not None:
            return spec
    raise ScenarioError("\n".join(str(p) for p in problems))


def parked_operations(deferred: list[str], committed: set[str], still_parked: int) -> set[str]:
    """Which deferred writes count as still in the AAM's DLQ after the replay.

    The AAM said ``deferred`` for each of ``deferred`` (in the order they were parked) and, after
    the replay, that ``still_parked`` entries wait. A deferred write the farm committed is not
    lost whatever the DLQ holds; of the others at most ``still_parked`` can be in the DLQ, and
    any beyond that count are lost.
    """
    waiting = [op for op in deferred if op not in committed]
    return set(waiting[: max(0, still_parked)])


class ScenarioRun:
    """One run of one scenario with one profile."""

    def __init__(
        self,
        spec: ScenarioSpec,
        options: RunOptions,
        *,
        run_id: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.spec = spec
        self.options = options
        self.run_id = run_id or new_run_id()
        self.on_progress = on_progress
        self.journal = RunJournal()
        #: The AAM under test over HTTP: --aam-url, else the scenario's ``aam.url``.
        self.aam_url = options.aam_url or (spec.aam.url if spec.aam is not None else None)
        #: An AAM reached over HTTP is whatever it is: the scenario's profile does not apply.
        self.profile_label = (
            EXTERNAL_PROFILE
            if self.aam_url
            else f"mutant-{options.mutant}"
            if options.mutant
            else spec.profile.label
        )
        self.progress = RunProgress(
            run_id=self.run_id,
            scenario=spec.name,
            mode=spec.mode.value,
            profile=self.profile_label,
            duration=spec.duration_seconds,
        )
        self._handles: dict[str, ConnectorHandle] = {}
        self._aam: AamUnderTest | None = None
        self._leases: FarmLeases | None = None

    # --- set-up ---------------------------------------------------------------------------------

    def _specs(self) -> dict[str, ServiceSpec]:
        try:
            loaded = {s.id: s for s in load_specs(self.options.configs)}
        except SpecLoadError as exc:
            raise ScenarioError(f"service specs: {exc}") from None
        missing = [s for s in self.spec.services if s not in loaded]
        if missing:
            folders = ", ".join(map(str, self.options.configs))
            raise ScenarioError(
                f"scenario {self.spec.name}: services.{missing[0]}: no such service spec in "
                f"{folders} (known: {', '.join(sorted(loaded))}); "
                "give the folder that holds it with --configs"
            )
        return {s: loaded[s] for s in self.spec.services}

    def _tenants(self, spec: ServiceSpec) -> list[str]:
        have = [t.id for t in spec.tenants]
        if self.spec.tenants is None:
            return have
        for tenant in self.spec.tenants:
            if tenant not in have:
                raise ScenarioError(
                    f"scenario {self.spec.name}: tenants: service {spec.id} has no tenant "
                    f"{tenant!r} (it has {', '.join(have)})"
                )
        return list(self.spec.tenants)

    def _assignments(
        self, specs: dict[str, ServiceSpec]
    ) -> list[tuple[Any, list[str], dict[str, Any], int]]:
        """(registered workflow, services, params, concurrency) per scenario workflow entry."""
        out = []
        for i, run in enumerate(self.spec.workflows):
            where = f"scenario {self.spec.name}: workflows[{i}]"
            try:
                wf = get_workflow(run.name)
            except WorkflowConfigError as exc:
                raise ScenarioError(f"{where}.name: {exc}") from None
            try:
                # Check now so a misspelt or mistyped parameter is a config error, not a run of
                # failures.
                params = validate_params(wf.fn, dict(run.params))
            except WorkflowConfigError as exc:
                raise ScenarioError(f"{where}.params: {exc} (workflow {run.name})") from None
            if run.services:
                for service in run.services:
                    if service not in specs:
                        raise ScenarioError(
                            f"{where}.services: {service!r} is not one of the scenario's services"
                        )
                    if not wf.supports(specs[service]):
                        raise ScenarioError(
                            f"{where}.services: {run.name} cannot run on {service} "
                            f"({wf.description})"
                        )
                services = list(run.services)
            else:
                services = [s for s in specs if wf.supports(specs[s])]
                if not services:
                    raise ScenarioError(
                        f"{where}: no service of the scenario supports {run.name} "
                        f"({wf.description})"
                    )
            out.append((wf, services, params, run.concurrency))
        return out

    async def _emit(self) -> None:
        if self.on_progress is None:
            return
        result = self.on_progress(self.progress)
        if asyncio.iscoroutine(result):
            await result

    def _connector_view(self, handle: ConnectorHandle) -> dict[str, Any]:
        """The AAM's own figures (diagnostics, if it gives any) under the runner's count of
        logical calls and outcomes, which always wins."""
        view: dict[str, Any] = {}
        if self._aam is not None:
            with contextlib.suppress(Exception):  # a stats snapshot must never break the run
                view.update(self._aam.diagnostics(handle.id) or {})
        f = handle.figures
        view.update(f.as_dict())
        view.setdefault("latency_p50", f.percentile(0.50))
        view.setdefault("latency_p99", f.percentile(0.99))
        return view

    def _refresh_progress(self, started: float) -> None:
        self.progress.elapsed = round(time.monotonic() - started, 2)
        for cid, handle in self._handles.items():
            self.progress.connectors[cid] = self._connector_view(handle)
        surfaced: dict[str, int] = {}
        for (_, _, cls), n in self.journal.surfaced.items():
            surfaced[cls] = surfaced.get(cls, 0) + n
        self.progress.surfaced = surfaced
        self.progress.writes_issued = len(self.journal.writes)

    def _waiting_for_farm(self, busy: FarmBusy) -> None:
        self.progress.phase = "waiting for the farm"
        log.info("%s; waiting", busy)

    # --- the run --------------------------------------------------------------------------------

    async def _open_aam(self) -> AamUnderTest:
        """The AAM under test: over HTTP when ``aam_url`` is set, else the reference in-process."""
        if self.aam_url:
            from workflows.aam_http import HttpAam

            return await HttpAam.connect(self.aam_url, self.options.aam_token)
        from aam import Mesh

        state = self.options.state_dir / "runs" / self.run_id / "aam"
        state.mkdir(parents=True, exist_ok=True)
        if self.options.mutant:
            from workflows.mutants import open_mutant

            return await open_mutant(self.options.mutant, state, seed=self.spec.seed)
        return await Mesh.open(state_dir=state, profile=self.spec.profile, seed=self.spec.seed)

    async def execute(self) -> Scorecard:
        """Run the scenario end to end and return its scorecard."""
        spec = self.spec
        specs = self._specs()
        assignments = self._assignments(specs)
        try:
            farms = FarmSet(self.options.farm_urls, self.options.admin_token)
        except ValueError as exc:
            raise ScenarioError(str(exc)) from None
        started_wall = datetime.now(UTC)
        try:
            leases = FarmLeases(
                farms.clients_for(spec.services),
                f"run {self.run_id} ({spec.name}, {self.profile_label}) "
                f"pid {os.getpid()} on {socket.gethostname()}",
                wait_seconds=self.options.wait_for_farm,
            )
            self._leases = leases
            try:
                farm_clients = farms.clients_for(spec.services)
                await leases.acquire(on_wait=self._waiting_for_farm)
                creds: dict[str, dict[str, Any]] = {}
                for service in spec.services:
                    farm_creds = await farms.client(service).credentials()
                    if service not in farm_creds:
                        raise ScenarioError(
                            f"farm {farms.url_for(service)} does not serve service {service!r}"
                        )
                    creds[service] = farm_creds[service]
                for client in farm_clients:
                    await client.reset(spec.seed)
                    await client.set_chaos(spec.mode.value)
                for outage in spec.outages:  # times count from the reset just above
                    await farms.client(outage.service).schedule_outage(
                        outage.service,
                        outage.tenant,
                        outage.at_seconds,
                        outage.duration_seconds,
                        list(outage.methods) if outage.methods else None,
                    )
                leases.mark_baseline()
            except (FarmError, ScenarioError) as exc:
                await leases.release()
                raise ScenarioError(str(exc)) from None
            except asyncio.CancelledError:
                # Stopped while setting up (the console's stop or kill switch): give the farm
                # back now, not when the lease lapses.
                await leases.release()
                raise

            try:
                self._aam = await self._open_aam()
                card = await self._run_with_aam(specs, assignments, creds, farms, started_wall)
            except FarmUntrustworthy as exc:
                raise ScenarioError(f"ERROR: {exc}") from None
            except FarmError as exc:
                raise ScenarioError(f"farm failed during the run: {exc}") from None
            except AamContractError as exc:
                raise ScenarioError(
                    f"ERROR: the AAM under test broke the contract on {exc}; "
                    "the run cannot be judged"
                ) from None
            finally:
                if self._aam is not None:
                    with contextlib.suppress(Exception):
                        await self._aam.aclose()
                if self.progress.phase != "done":
                    # Interrupted or crashed: leave the farm in its starting weather, not in a
                    # storm nobody is measuring (best effort; the farm may be what failed).
                    for client in farms.clients_for(spec.services):
                        with contextlib.suppress(Exception):
                            await client.set_chaos("calm")
                await leases.release()
            return card
        finally:
            metrics.SCENARIO_RUNNING.labels(spec.name, self.profile_label).set(0)
            await farms.close()

    async def _run_with_aam(
        self,
        specs: dict[str, ServiceSpec],
        assignments: list[tuple[Any, list[str], dict[str, Any], int]],
        creds: dict[str, dict[str, Any]],
        farms: FarmSet,
        started_wall: datetime,
    ) -> Scorecard:
        spec = self.spec
        aam = self._aam
        assert aam is not None
        truth = {s: GroundTruth(farms.client(s)) for s in specs}
        await aam.drop_connectors()
        for service, sspec in specs.items():
            for tenant in self._tenants(sspec):
                entry = creds[service].get(tenant)
                if entry is None:
                    raise ScenarioError(f"farm has no credentials for {service}/{tenant}")
                try:
                    descriptor = descriptor_for(sspec, tenant, entry, farms.url_for(service))
                except DescriptorError as exc:
                    raise ScenarioError(str(exc)) from None
                await aam.put_connector(descriptor)
                cid = descriptor.connector_id
                self._handles[cid] = ConnectorHandle(
                    aam=aam,
                    id=cid,
                    spec=sspec,
                    tenant=tenant,
                    journal=self.journal,
                    truth=truth[service],
                    run_id=self.run_id,
                )
        wf_connectors = {
            wf.name: [cid for cid, h in self._handles.items() if h.service in services]
            for wf, services, _, _ in assignments
        }
        metrics.precreate(spec.name, spec.mode.value, self.profile_label, wf_connectors)
        metrics.SCENARIO_RUNNING.labels(spec.name, self.profile_label).set(1)

        started = time.monotonic()
        deadline = started + spec.duration_seconds
        stop_reads = asyncio.Event()
        read_tasks: list[asyncio.Task[None]] = []
        write_tasks: list[asyncio.Task[None]] = []
        for wf, services, params, concurrency in assignments:
            for cid, handle in self._handles.items():
                if handle.service not in services:
                    continue
                copy = dataclasses.replace(handle, workflow=wf.name)
                for _ in range(concurrency):
                    task = asyncio.create_task(
                        self._copy(wf, copy, params, deadline), name=f"{wf.name}:{cid}"
                    )
                    (write_tasks if wf.name in DRAINING_WORKFLOWS else read_tasks).append(task)

        self.progress.phase = "running"
        ticker = asyncio.create_task(self._tick(started, stop_reads))
        try:
            await self._wait_until(deadline, read_tasks + write_tasks)
            self.progress.phase = "draining"
            for task in read_tasks:
                task.cancel()
            if write_tasks:
                grace = min(MAX_DRAIN_SECONDS, max(2.0, spec.duration_seconds))
                _, late = await asyncio.wait(write_tasks, timeout=grace)
                for task in late:
                    task.cancel()
            await asyncio.gather(*read_tasks, *write_tasks, return_exceptions=True)
            for task in read_tasks + write_tasks:
                exc = task.exception() if not task.cancelled() else None
                if isinstance(exc, WorkflowConfigError):
                    raise ScenarioError(str(exc))
                if exc is not None:
                    raise exc
        finally:
            stop_reads.set()
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            for task in read_tasks + write_tasks:
                task.cancel()
        for write in self.journal.writes.values():
            if write.outcome == "pending":
                write.outcome = "cancelled"
        self._settle_pending_operations()
        elapsed = time.monotonic() - started
        finished_wall = time.time()
        self._refresh_progress(started)
        stats_at_end = dict(self.progress.connectors)

        # Chaos off the way an operator would: back to the farm's starting weather.
        deferred = [op for op, w in self.journal.writes.items() if w.deferred]
        backlog = len(deferred)
        for client in farms.clients_for(spec.services):
            await client.set_chaos("calm")
        replay: dict[str, Any] = {}
        still_parked = backlog
        if self.options.replay_dlq and backlog:
            self.progress.phase = "replaying"
            await self._emit()
            counts = await aam.replay_dlq()
            for _ in range(REPLAY_ROUNDS - 1):
                if not counts.pending:
                    break
                # Entries the AAM held back (an open circuit): replay again after a pause, as an
                # operator would, so the DLQ gets its chance to reach the farm.
                await asyncio.sleep(REPLAY_PAUSE_SECONDS)
                again = await aam.replay_dlq()
                counts = counts.model_copy(
                    update={
                        "replayed": counts.replayed + again.replayed,
                        "failed": again.failed,
                        "pending": again.pending,
                    }
                )
            replay = counts.model_dump()
            still_parked = counts.failed + counts.pending

        self.progress.phase = "checking"
        await self._emit()
        # Before any evidence is read: can the farms vouch for the whole run?
        assert self._leases is not None
        await self._leases.verify()
        ledger: dict[str, Any] = {"writes": [], "drift_events": []}
        status_services: dict[str, Any] = {}
        attempt_rows: list[dict[str, Any]] = []
        for client in farms.clients_for(spec.services):
            part = await client.ledger()
            ledger["writes"] += part.get("writes", [])
            ledger["drift_events"] += part.get("drift_events", [])
            status = await client.status()
            status_services.update(
                {k: v for k, v in status.get("services", {}).items() if k in specs}
            )
            attempt_rows += [r for r in await client.attempts() if r.get("service") in specs]
        writes = committed_writes(ledger, specs)
        truth = {}
        for service, tenant, resource in sorted(resources_read(self.journal.operations)):
            truth[(service, tenant, resource)] = await record_truth(
                farms.client(service), service, tenant, resource, writes
            )
        committed_ops = {w.lookup_value for w in writes if w.lookup_value is not None}
        pending_ops = parked_operations(deferred, committed_ops, still_parked)

        factor = RATE_FACTOR.get(spec.mode.value, 1.0)
        copies: dict[str, int] = {}
        for _, services, _, concurrency in assignments:
            for cid, handle in self._handles.items():
                if handle.service in services:
                    copies[cid] = copies.get(cid, 0) + concurrency
        limits: list[ConnectorLimits] = []
        figures: list[ConnectorFigures] = []
        for cid, handle in self._handles.items():
            limit = handle.spec.rate_limit_for(handle.tenant)
            farm = status_services.get(handle.service, {}).get("tenants", {}).get(handle.tenant, {})
            lim = ConnectorLimits(
                connector=cid,
                service=handle.service,
                tenant=handle.tenant,
                allowed_rps=limit.max_rps * factor,
                burst=max(1, int(limit.burst * factor)),
                copies=copies.get(cid, 0),
                advertises_limits=handle.spec.rate_limit_headers in ADVERTISING_STYLES,
            )
            limits.append(lim)
            figures.append(self._figures(handle, stats_at_end.get(cid, {}), farm, lim, elapsed))

        evidence = JudgeEvidence(
            started_at=started_wall.timestamp(),
            finished_at=finished_wall,
            operations=self.journal.operations,
            attempts=farm_attempts(
                attempt_rows, {s: sp.dialect.rate_limit_status for s, sp in specs.items()}
            ),
            writes=writes,
            truth=truth,
            tokens=token_facts(
                specs,
                {"services": status_services},
                [(h.service, h.tenant) for h in self._handles.values()],
                elapsed,
            ),
            drift=drift_facts(ledger, specs, started_wall.timestamp()),
            limits=limits,
            replayed=bool(replay),
        )
        invariants = check_all(evidence, spec.effective_thresholds())
        error = unjudgeable(evidence)
        card = Scorecard(
            run_id=self.run_id,
            scenario=spec.name,
            mode=spec.mode.value,
            profile=self.profile_label,
            seed=spec.seed,
            duration_seconds=round(elapsed, 2),
            started_at=started_wall.isoformat(timespec="seconds"),
            finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
            connectors=figures,
            workflows=self._workflow_figures(wf_connectors),
            invariants=invariants,
            dlq={"backlog": backlog, "pending_after_replay": len(pending_ops), "replay": replay},
            verdict="ERROR" if error else verdict_of(invariants),
            error=error,
        )
        self._record_metrics(card)
        self.progress.phase = "done"
        await self._emit()
        return card

    async def _wait_until(self, deadline: float, tasks: list[asyncio.Task[None]]) -> None:
        # Returns at the deadline, or earlier if every copy stopped (e.g. all refused drift) or
        # one crashed (the crash is re-raised by the caller).
        while tasks and time.monotonic() < deadline:
            remaining = deadline - time.monotonic()
            done, _ = await asyncio.wait(
                tasks, timeout=remaining, return_when=asyncio.FIRST_EXCEPTION
            )
            if any(t.exception() for t in done if not t.cancelled()) or len(done) == len(tasks):
                return
            if time.monotonic() >= deadline:
                return
            # Some copies ended normally (schema_drift stop): keep waiting for the rest.
            tasks = [t for t in tasks if not t.done()]

    async def _tick(self, started: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._refresh_progress(started)
            try:
                await self._emit()
            except Exception:  # a broken display must not break the run it displays
                log.exception("progress callback failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.options.progress_interval)

    async def _copy(
        self, wf: Any, handle: ConnectorHandle, params: dict[str, Any], deadline: float
    ) -> None:
        """One concurrent copy of a workflow on one connector, looping until the deadline."""
        from aam import errors

        key = (wf.name, handle.id)
        for _ in range(10_000_000):  # bounded; the deadline ends it long before
            if time.monotonic() >= deadline:
                return
            t0 = time.monotonic()
            outcome = "ok"
            try:
                await wf.fn(handle, **params)
            except errors.AamError as exc:
                outcome = exc.error_class
                self.journal.surfaced[(wf.name, handle.id, outcome)] += 1
            except (WorkflowConfigError, AamContractError, asyncio.CancelledError):
                raise
            except Exception as exc:
                # Outside the AAM's error tree: a contract breach the scorecard must show
                # (its operation is judged failed), not a crash that hides the rest of the run.
                outcome = UNCLASSIFIED
                self.journal.surfaced[(wf.name, handle.id, outcome)] += 1
                if self.journal.surfaced[(wf.name, handle.id, outcome)] == 1:
                    log.warning("%s on %s raised %r", wf.name, handle.id, exc, exc_info=exc)
            self.journal.iterations[key] += 1
            metrics.WORKFLOW_DURATION.labels(wf.name).observe(time.monotonic() - t0)
            metrics.WORKFLOW_RUNS.labels(wf.name, handle.id, outcome).inc()
            if outcome == "ok":
                self.journal.successes[key] += 1
                await asyncio.sleep(0)
            elif outcome == "schema_drift":
                # The AAM refused data it could not map: the right stop, not a retryable error.
                self.journal.drift_refusals += 1
                return
            else:
                await asyncio.sleep(ERROR_PAUSE_SECONDS)

    def _settle_pending_operations(self) -> None:
        """Operations still unanswered when the run stopped: a failure if the AAM sat on them past
        the deadline (it hung), else cut short by the end of the run (not judged)."""
        now = time.time()
        deadline = self.spec.operation_deadline_seconds or OPERATION_DEADLINE_SECONDS
        for op in self.journal.operations:
            if op.outcome != "pending":
                continue
            if now - op.started_at > deadline:
                self.journal.finish(op, "failed", error_class="no_answer")
            else:
                self.journal.finish(op, "cancelled")

    def _figures(
        self,
        handle: ConnectorHandle,
        st: dict[str, Any],
        farm: dict[str, Any],
        lim: ConnectorLimits,
        elapsed: float,
    ) -> ConnectorFigures:
        successes = int(st.get("successes", 0))
        circuit = st.get("circuit_state")
        return ConnectorFigures(
            connector=handle.id,
            service=handle.service,
            tenant=handle.tenant,
            calls=int(st.get("calls", 0)),
            attempts=int(st.get("attempts", farm.get("calls", 0))),
            successes=successes,
            goodput_rps=round(successes / elapsed, 2) if elapsed > 0 else 0.0,
            errors={str(k): int(v) for k, v in (st.get("failures") or {}).items() if v},
            retries=int(st.get("retries", 0)),
            token_refreshes=int(st.get("token_refreshes", farm.get("tokens_issued", 0))),
            dlq_entries=int(st.get("dlq_entries", st.get("deferred", 0))),
            latency_p50=st.get("latency_p50"),
            latency_p99=st.get("latency_p99"),
            attempt_latency_p50=st.get("attempt_latency_p50"),
            attempt_latency_p99=st.get("attempt_latency_p99"),
            limiter_wait_seconds=round(float(st.get("limiter_wait_seconds") or 0.0), 3),
            circuit_state=None if circuit is None else str(getattr(circuit, "value", circuit)),
            farm_calls=int(farm.get("calls", 0)),
            farm_2xx=int(farm.get("2xx", 0)),
            farm_429=int(farm.get("429", 0)),
            farm_401=int(farm.get("401", 0)),
            allowed_rps=round(lim.allowed_rps, 2),
        )

    def _workflow_figures(self, wf_connectors: dict[str, list[str]]) -> list[WorkflowFigures]:
        out = []
        for name, connectors in wf_connectors.items():
            iterations = sum(self.journal.iterations[(name, c)] for c in connectors)
            ok = sum(self.journal.successes[(name, c)] for c in connectors)
            errors: dict[str, int] = {}
            for (wf, _, cls), n in self.journal.surfaced.items():
                if wf == name:
                    errors[cls] = errors.get(cls, 0) + n
            out.append(
                WorkflowFigures(
                    workflow=name,
                    connectors=connectors,
                    iterations=iterations,
                    ok=ok,
                    errors=errors,
                )
            )
        return out

    def _record_metrics(self, card: Scorecard) -> None:
        metrics.record_verdict(
            card.scenario,
            card.mode,
            card.profile,
            card.verdict,
            {inv.name: inv.status for inv in card.invariants},
        )


async def run_scenario(
    spec: ScenarioSpec,
    options: RunOptions,
    *,
    run_id: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> Scorecard:
    """Run one scenario with its profile; see the module docstring for the steps."""
    return await ScenarioRun(spec, options, run_id=run_id, on_progress=on_progress).execute()


def with_overrides(
    spec: ScenarioSpec,
    *,
    mode: str | None = None,
    profile: str | None = None,
    seed: int | None = None,
    duration: float | None = None,
) -> ScenarioSpec:
    """The scenario with command-line overrides applied (validated like the file itself)."""
    from aam.profile import AamProfile

    data = spec.model_dump()
    if mode is not None:
        data["mode"] = mode
    if profile is not None:
        try:
            data["profile"] = AamProfile.parse(profile).model_dump()
        except ValueError as exc:
            raise ScenarioError(f"--profile: {exc}") from None
    if seed is not None:
        data["seed"] = seed
    if duration is not None:
        data["duration_seconds"] = duration
    try:
        return ScenarioSpec.model_validate(data)
    except ValidationError as exc:  # report like a file problem, naming the option, no trace
        options = {"mode": "--mode", "seed": "--seed", "duration_seconds": "--duration"}
        raise ScenarioError(
            "\n".join(
                f"scenario {spec.name}: {options.get(p.field, p.field)}: {p.message}"
                for p in problems_from_validation(spec.name, exc)
            )
        ) from None


def profiles_from(text: str) -> list[str]:
    """``naive,full`` -> ``["naive", "full"]`` (each validated)."""
    from aam.profile import AamProfile

    names = [p.strip() for p in text.split(",") if p.strip()]
    if len(names) < 2:
        raise ScenarioError("--compare needs at least two profiles, e.g. naive,full")
    for name in names:
        try:
            AamProfile.parse(name)
        except ValueError as exc:
            raise ScenarioError(f"--compare: {exc}") from None
    return names
