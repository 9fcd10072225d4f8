"""The AAM backend API (port 8002 in the embedded setup).

Connectors, workflows, scenario runs in the background with live progress, the DLQ, and the
Prometheus metrics of the AAM (``aam_*``) and the runner (``gauntlet_*``) from one process.
One scenario runs at a time (each run resets the farm); a second start gets ``409``.

Every endpoint but ``GET /health`` and ``GET /metrics`` wants ``Authorization: Bearer <token>``
(401 without, 403 with a wrong one): the token comes from ``GAUNTLET_BACKEND_TOKEN``, else it is
generated at start and written to ``<state dir>/backend-token`` (mode 0600). The token itself is
never logged, and no endpoint returns a client secret, API key or access token.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import logging
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from farm.bodycap import BodyCapMiddleware
from farm.loader import DEFAULT_CONFIG_DIR, SpecLoadError, load_specs
from farm.server import port_is_free
from workflows.backend_models import (
    ConnectorRequest,
    ReplayRequest,
    ScenarioRequest,
    WorkflowRequest,
)
from workflows.backend_openapi import complete as complete_openapi
from workflows.connector import ConnectorHandle, GroundTruth, WorkflowConfigError
from workflows.descriptors import DescriptorError, descriptor_for
from workflows.farm_client import FarmError, FarmSet
from workflows.history import RunHistory
from workflows.journal import RunJournal
from workflows.library import REGISTRY
from workflows.params import validate_params
from workflows.runner import (
    EXTERNAL_PROFILE,
    RunOptions,
    RunProgress,
    ScenarioError,
    load_scenario,
    new_run_id,
    run_scenario,
    with_overrides,
)
from workflows.scenario import ScenarioSpec

SCENARIOS_DIR = Path(__file__).parent / "scenarios"
TOKEN_ENV = "GAUNTLET_BACKEND_TOKEN"
TOKEN_FILE = "backend-token"
#: Reachable without a token: liveness probes and Prometheus scrapes.
OPEN_ENDPOINTS = frozenset({("GET", "/health"), ("GET", "/metrics")})

log = logging.getLogger(__name__)
#: The token for an external AAM when a run request names none (``gauntlet aam serve``'s).
AAM_TOKEN_ENV = "GAUNTLET_AAM_TOKEN"
#: Request bodies (connector, workflow, scenario requests) are small JSON documents.
MAX_BODY_BYTES = 1 << 20
#: A crashed run's farm lease lapses within 30 s; recovery waits for it this long.
RECOVERY_WAIT_SECONDS = 90.0


def resolve_token(state_dir: Path) -> str:
    """The backend's bearer token: ``$GAUNTLET_BACKEND_TOKEN``, else a new random one written to
    ``<state_dir>/backend-token`` (mode 0600; the path is logged, the token never is)."""
    from_env = os.environ.get(TOKEN_ENV, "").strip()
    if from_env:
        return from_env
    token = secrets.token_urlsafe(32)
    path = write_token_file(state_dir, token)
    log.warning("backend token written to %s (send it as Authorization: Bearer)", path)
    return token


def write_token_file(state_dir: Path, token: str) -> Path:
    """Write ``token`` to ``<state_dir>/backend-token``, readable by its owner only."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / TOKEN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode on O_CREAT: set it again
        os.write(fd, token.encode())
    finally:
        os.close(fd)
    return path


def read_token(state_dir: Path) -> str | None:
    """The token a client should send: ``$GAUNTLET_BACKEND_TOKEN``, else the state dir's file."""
    from_env = os.environ.get(TOKEN_ENV, "").strip()
    if from_env:
        return from_env
    try:
        return (state_dir / TOKEN_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def auth_headers(token: str | None) -> dict[str, str]:
    """``Authorization`` header for the backend (empty when there is no token)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


@dataclass
class BackendSettings:
    """Where the farm is and where state lives."""

    farm_urls: dict[str, str]
    admin_token: str | None
    state_dir: Path = Path("var")
    scenarios_dir: Path = SCENARIOS_DIR
    configs: list[Path] = field(default_factory=lambda: [DEFAULT_CONFIG_DIR])
    #: Bearer token the API wants; None = :func:`resolve_token` when the app is created.
    token: str | None = field(default=None, repr=False)


@dataclass
class RunRecord:
    """A run the backend started (live view; finished runs are also in the history)."""

    id: str
    scenario: str
    mode: str
    profile: str
    status: Literal["queued", "running", "done", "error"] = "queued"
    progress: dict[str, Any] = field(default_factory=dict)
    scorecard: dict[str, Any] | None = None
    verdict: str | None = None
    error: str | None = None


class Backend:
    """State behind the API: the backend's own mesh, the runs, the history."""

    def __init__(self, settings: BackendSettings) -> None:
        self.settings = settings
        self.history = RunHistory(settings.state_dir / "history.sqlite")
        self.runs: dict[str, RunRecord] = {}
        self.mesh: Any = None
        self.handles: dict[str, ConnectorHandle] = {}
        self.journal = RunJournal()
        self._farms: FarmSet | None = None
        self._batch: asyncio.Task[None] | None = None
        self._stop_reason: str | None = None
        #: Replay reports of runs a crash interrupted, recovered at start.
        self.recovered: dict[str, dict[str, Any]] = {}

    async def start(self) -> None:
        from aam import AamProfile, Mesh

        state = self.settings.state_dir / "backend" / "aam"
        state.mkdir(parents=True, exist_ok=True)
        self.mesh = await Mesh.open(state_dir=state, profile=AamProfile.parse("full"))
        self._farms = FarmSet(self.settings.farm_urls, self.settings.admin_token)
        interrupted = self.history.mark_interrupted()
        if interrupted:
            # Holds the run slot: no new run resets a farm while old writes are resolved.
            self._batch = asyncio.create_task(self._recover(interrupted))

    async def _recover(self, run_ids: list[str]) -> None:
        """Resolve the writes runs interrupted by a crash left in flight (``aam/intents.py``):
        their AAM state parks them in the DLQ, and one replay resolves each exactly once."""
        from workflows.dlq_ops import replay_entries

        for run_id in run_ids:
            path = self.settings.state_dir / "runs" / run_id / "aam"
            if not path.exists():
                continue
            try:
                report = await replay_entries(
                    path, self.settings.farm_urls, self.settings.admin_token,
                    self.settings.configs, wait_seconds=RECOVERY_WAIT_SECONDS,
                )  # fmt: skip
            except Exception as exc:  # the farm may be down: `gauntlet dlq replay` can redo it
                log.warning("recovering interrupted run %s failed: %s", run_id, exc)
                continue
            self.recovered[run_id] = report
            log.warning("recovered interrupted run %s: %s", run_id, report)

    async def stop(self) -> None:
        if self._batch is not None:
            self._batch.cancel()
            with contextlib.suppress(BaseException):
                await self._batch
        if self.mesh is not None:
            await self.mesh.close()
        if self._farms is not None:
            await self._farms.close()

    @property
    def busy(self) -> bool:
        return self._batch is not None and not self._batch.done()

    def stop_batch(self, reason: str) -> list[str]:
        """Cancel the running batch; returns the ids of the runs it ends (none when idle)."""
        if not self.busy:
            return []
        assert self._batch is not None
        self._stop_reason = reason
        self._batch.cancel()
        ended = [r.id for r in self.runs.values() if r.status in ("queued", "running")]
        for record in self.runs.values():
            if record.status == "queued":
                record.status, record.error = "error", f"{reason} before it started"
        return ended

    async def wait_stopped(self, limit_seconds: float) -> bool:
        """Wait (bounded) until no batch runs; True when none does."""
        if self._batch is not None and not self._batch.done():
            await asyncio.wait({self._batch}, timeout=limit_seconds)
        return not self.busy

    def specs(self) -> dict[str, Any]:
        try:
            return {s.id: s for s in load_specs(self.settings.configs)}
        except SpecLoadError as exc:
            raise HTTPException(500, f"service specs are invalid: {exc}") from None

    async def add_connector(self, req: ConnectorRequest) -> dict[str, Any]:
        specs = self.specs()
        if req.service not in specs:
            raise HTTPException(404, f"no service {req.service!r} (known: {', '.join(specs)})")
        spec = specs[req.service]
        if req.tenant not in [t.id for t in spec.tenants]:
            raise HTTPException(404, f"service {req.service} has no tenant {req.tenant!r}")
        cid = f"{req.service}:{req.tenant}"
        if cid in self.handles:
            raise HTTPException(409, f"connector {cid} already exists")
        assert self._farms is not None
        try:
            creds = await self._farms.client(req.service).credentials()
        except FarmError as exc:
            raise HTTPException(502, str(exc)) from None
        entry = creds.get(req.service, {}).get(req.tenant)
        if entry is None:
            raise HTTPException(502, f"the farm has no credentials for {cid}")
        url = self._farms.url_for(req.service)
        try:
            descriptor = descriptor_for(spec, req.tenant, entry, url)
        except DescriptorError as exc:
            raise HTTPException(502, str(exc)) from None
        await self.mesh.put_connector(descriptor)
        self.handles[cid] = ConnectorHandle(
            aam=self.mesh,
            id=cid,
            spec=spec,
            tenant=req.tenant,
            journal=self.journal,
            truth=GroundTruth(self._farms.client(req.service)),
            run_id="backend-" + new_run_id(),
        )
        return self.connector_view(cid)

    def connector_view(self, cid: str) -> dict[str, Any]:
        handle = self.handles[cid]
        stats = self.mesh.diagnostics(cid) or handle.figures.as_dict()
        return {"id": cid, "service": handle.service, "tenant": handle.tenant, "stats": stats}

    def resolve_scenario(self, req: ScenarioRequest) -> ScenarioSpec:
        if (req.scenario is None) == (req.spec is None):
            raise HTTPException(422, "give exactly one of 'scenario' (a file name) or 'spec'")
        if req.scenario is not None:
            path = self.settings.scenarios_dir / f"{req.scenario}.yaml"
            if not path.exists():
                known = sorted(p.stem for p in self.settings.scenarios_dir.glob("*.yaml"))
                raise HTTPException(
                    404, f"no scenario {req.scenario!r} (known: {', '.join(known)})"
                )
            try:
                return load_scenario(path)
            except ScenarioError as exc:
                raise HTTPException(422, str(exc)) from None
        try:
            return ScenarioSpec.model_validate(req.spec)
        except ValidationError as exc:
            raise HTTPException(422, _validation_reason("spec", exc)) from None

    def start_runs(self, req: ScenarioRequest) -> list[RunRecord]:
        if self.busy:
            raise HTTPException(409, "a scenario is already running; wait for it (GET /runs)")
        base = self.resolve_scenario(req)
        if req.aam_url is not None and (req.profiles or req.profile):
            raise HTTPException(
                422,
                "aam_url tests the AAM at that URL as it is: 'profile' and 'profiles' apply to "
                "the reference AAM only",
            )
        profiles: list[str | None] = list(req.profiles) if req.profiles else [req.profile]
        specs: list[ScenarioSpec] = []
        for profile in profiles:
            try:
                specs.append(
                    with_overrides(
                        base,
                        mode=req.mode,
                        profile=profile,
                        seed=req.seed,
                        duration=req.duration_seconds,
                    )
                )
            except ScenarioError as exc:
                raise HTTPException(422, str(exc)) from None
        records = []
        for spec in specs:
            record = RunRecord(
                id=new_run_id(),
                scenario=spec.name,
                mode=spec.mode.value,
                profile=EXTERNAL_PROFILE if req.aam_url else spec.profile.label,
            )
            self.runs[record.id] = record
            records.append(record)
        aam = (req.aam_url, req.aam_token or os.environ.get(AAM_TOKEN_ENV, "").strip() or None)
        self._batch = asyncio.create_task(
            self._run_batch(list(zip(records, specs, strict=True)), aam)
        )
        return records

    async def _run_batch(
        self,
        batch: list[tuple[RunRecord, ScenarioSpec]],
        aam: tuple[str | None, str | None] = (None, None),
    ) -> None:
        options = RunOptions(
            farm_urls=self.settings.farm_urls,
            admin_token=self.settings.admin_token,
            state_dir=self.settings.state_dir,
            configs=self.settings.configs,
            aam_url=aam[0],
            aam_token=aam[1],
        )
        self._stop_reason = None
        for record, spec in batch:
            if record.status != "queued":  # stopped before its turn
                continue
            record.status = "running"
            self.history.start(record.id, spec.name, spec.mode.value, record.profile, spec.seed)

            def on_progress(p: RunProgress, record: RunRecord = record) -> None:
                record.progress = p.as_dict()

            try:
                card = await run_scenario(spec, options, run_id=record.id, on_progress=on_progress)
            except asyncio.CancelledError:
                reason = self._stop_reason or "cancelled (backend shutting down)"
                record.status, record.error = "error", reason
                self.history.fail(record.id, record.error)
                raise
            except Exception as exc:  # a run's failure is reported on the run, not as a crash
                record.status, record.error = "error", f"{type(exc).__name__}: {exc}"
                self.history.fail(record.id, record.error)
                continue
            self.history.finish(card)
            run_dir = self.settings.state_dir / "runs" / record.id
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "scorecard.json").write_text(card.to_json(), encoding="utf-8")
            record.scorecard = card.model_dump(mode="json")
            record.scorecard["totals"] = card.totals()
            record.verdict = card.verdict
            record.status = "done"


def _validation_reason(where: str, exc: ValidationError) -> str:
    from farm.loader import format_loc

    parts = [f"{where}.{format_loc(e['loc'])}: {e['msg']}" for e in exc.errors()[:10]]
    return "; ".join(parts)


def create_app(settings: BackendSettings) -> FastAPI:
    """The backend FastAPI app; the mesh opens and closes with the app's lifespan."""
    from workflows.console_api import is_open_path, mount_console

    backend = Backend(settings)
    token = settings.token or resolve_token(settings.state_dir)
    expected = token.encode()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await backend.start()
        await console.start()
        try:
            yield
        finally:
            await console.stop()
            await backend.stop()

    app = FastAPI(title="AAM Gauntlet backend", lifespan=lifespan)
    app.add_middleware(BodyCapMiddleware, limit=MAX_BODY_BYTES)
    app.openapi = complete_openapi(  # type: ignore[method-assign]
        app.openapi,
        lambda method, path: (method, path) in OPEN_ENDPOINTS or is_open_path(method, path),
    )
    app.state.backend = backend
    app.state.backend_token = token
    console = mount_console(app, backend)  # the web console: workflows/console_api.py

    @app.middleware("http")
    async def _require_token(request: Request, call_next: Any) -> Response:
        if (request.method, request.url.path) in OPEN_ENDPOINTS or is_open_path(
            request.method, request.url.path
        ):
            return await call_next(request)
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            return JSONResponse(
                {"error": "unauthorized", "detail": "send Authorization: Bearer <token>"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(presented.encode(), expected):
            return JSONResponse(
                {"error": "forbidden", "detail": "wrong backend token"}, status_code=403
            )
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{format_loc_safe(e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()[:10]]
        return JSONResponse(
            {"error": "invalid_request", "detail": "; ".join(parts)}, status_code=422
        )

    # Starlette's class, not FastAPI's subclass: FastAPI's own refusals (a body it cannot parse,
    # an unknown path) must come out in the same {"error", "detail"} shape.
    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": _error_name(exc.status_code), "detail": exc.detail},
            status_code=exc.status_code,
        )

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "running": backend.busy, "connectors": len(backend.handles)}

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/connectors")
    async def list_connectors() -> dict[str, Any]:
        return {"connectors": [backend.connector_view(cid) for cid in sorted(backend.handles)]}

    @app.post("/connectors", status_code=201)
    async def add_connector(req: ConnectorRequest) -> dict[str, Any]:
        return await backend.add_connector(req)

    @app.get("/workflows")
    async def list_workflows() -> dict[str, Any]:
        return {
            "workflows": [
                {"name": wf.name, "description": wf.description}
                for wf in sorted(REGISTRY.values(), key=lambda w: w.name)
            ]
        }

    @app.post("/workflows/run")
    async def run_workflow(req: WorkflowRequest) -> dict[str, Any]:
        from aam import errors

        wf = REGISTRY.get(req.workflow)
        if wf is None:
            raise HTTPException(404, f"no workflow {req.workflow!r} (known: {', '.join(REGISTRY)})")
        handle = backend.handles.get(req.connector)
        if handle is None:
            raise HTTPException(
                404, f"no connector {req.connector!r}; add it with POST /connectors"
            )
        if not wf.supports(handle.spec):
            raise HTTPException(422, f"{wf.name} cannot run on {handle.service}: {wf.description}")
        try:
            params = validate_params(wf.fn, req.params)
        except WorkflowConfigError as exc:
            raise HTTPException(422, f"params: {wf.name}: {exc}") from None
        results: list[dict[str, Any]] = []
        for _ in range(req.iterations):
            try:
                results.append({"ok": True, "result": await wf.fn(handle, **params)})
            except errors.AamError as exc:
                results.append({"ok": False, "error_class": exc.error_class, "detail": str(exc)})
            except (WorkflowConfigError, TypeError) as exc:
                raise HTTPException(422, f"{wf.name}: {exc}") from None
        return {"workflow": wf.name, "connector": handle.id, "iterations": results}

    @app.post("/scenarios/run", status_code=202)
    async def run_scenario_endpoint(req: ScenarioRequest) -> dict[str, Any]:
        records = backend.start_runs(req)
        return {"run_id": records[0].id, "run_ids": [r.id for r in records]}

    @app.post("/demo/run_scenario", status_code=202)
    async def demo_run(
        mode: Literal["mild", "storm", "hell"] = Query("storm"),
        profiles: str = Query("naive,sdk-default,full", pattern=r"^[a-z_,-]+$"),
        duration_seconds: float | None = Query(None, gt=0, le=3600),
    ) -> dict[str, Any]:
        try:
            req = ScenarioRequest(
                scenario=mode,
                profiles=[p for p in profiles.split(",") if p],
                duration_seconds=duration_seconds,
            )
        except ValidationError as exc:  # e.g. profiles=",,": no profile at all
            raise HTTPException(422, _validation_reason("query", exc)) from None
        records = backend.start_runs(req)
        return {"run_id": records[0].id, "run_ids": [r.id for r in records]}

    @app.get("/runs")
    async def list_runs(limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
        rows = backend.history.list(limit)
        for row in rows:
            live = backend.runs.get(row["id"])
            if live is not None:
                row["status"] = live.status
        queued = [
            dataclasses.asdict(r)
            for r in backend.runs.values()
            if r.status == "queued" and not any(x["id"] == r.id for x in rows)
        ]
        return {"runs": queued + rows}

    @app.get("/runs/{run_id}")
    async def get_run(run_id: str) -> dict[str, Any]:
        live = backend.runs.get(run_id)
        if live is not None:
            return dataclasses.asdict(live)
        row = backend.history.get(run_id)
        if row is None:
            raise HTTPException(404, f"no run {run_id!r}")
        return row

    @app.get("/dlq")
    async def list_dlq(run_id: str | None = None) -> dict[str, Any]:
        from workflows.dlq_ops import list_entries

        chosen, path = _run_state(backend, run_id)
        return {"run_id": chosen, "entries": await list_entries(path)}

    @app.post("/dlq/replay")
    async def replay_dlq(req: ReplayRequest | None = None) -> dict[str, Any]:
        from workflows.dlq_ops import replay_entries

        if backend.busy:
            raise HTTPException(409, "a scenario is running; replay after it finishes")
        chosen, path = _run_state(backend, req.run_id if req else None)
        try:
            report = await replay_entries(
                path, settings.farm_urls, settings.admin_token, settings.configs
            )
        except (FarmError, ScenarioError) as exc:
            raise HTTPException(502, str(exc)) from None
        return {"run_id": chosen, "report": report}

    return app


def _run_state(backend: Backend, run_id: str | None) -> tuple[str, Path]:
    chosen = run_id or backend.history.latest_id()
    if chosen is None:
        raise HTTPException(404, "no runs yet")
    if backend.history.get(chosen) is None and chosen not in backend.runs:
        raise HTTPException(404, f"no run {chosen!r}")
    path = backend.settings.state_dir / "runs" / chosen / "aam"
    if not path.exists():
        raise HTTPException(404, f"run {chosen} has no AAM state (not started yet?)")
    return chosen, path


def _error_name(status: int) -> str:
    return {
        403: "forbidden",
        404: "not_found",
        409: "conflict",
        422: "invalid_request",
        502: "farm_unavailable",
    }.get(status, "error")


def format_loc_safe(loc: Any) -> str:
    """Pydantic location tuple as ``body.field[0]``."""
    from farm.loader import format_loc

    return format_loc(loc) if isinstance(loc, list | tuple) else str(loc)


def serve(settings: BackendSettings, *, host: str = "127.0.0.1", port: int = 8002) -> None:
    """Serve the backend with uvicorn (blocking)."""
    import sys

    import uvicorn

    if port and not port_is_free(host, port):
        print(
            f"error {host}:{port} is already in use; stop whatever is listening there "
            "or pick another --port",
            file=sys.stderr,
        )
        raise SystemExit(2)
    if settings.token is None:
        # A generated token: resolve_token logs the file it wrote (one line, never the token).
        settings.token = resolve_token(settings.state_dir)
        if os.environ.get(TOKEN_ENV, "").strip():
            print(
                f"backend token: ${TOKEN_ENV} (send Authorization: Bearer <token>)", file=sys.stderr
            )
    from workflows.console_api import LOGIN_CODE_ENV

    if not os.environ.get(LOGIN_CODE_ENV, "").strip():
        # A one-time code for the web console; in the URL's fragment, which no server sees.
        os.environ[LOGIN_CODE_ENV] = secrets.token_urlsafe(18)
        print(
            f"web console: http://{host}:{port}/#login={os.environ[LOGIN_CODE_ENV]} "
            "(signs in once; or paste the token)",
            file=sys.stderr,
        )
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
