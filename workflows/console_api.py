"""The web console's routes on the AAM backend: the page, its event stream and its controls.

Served on the backend's own origin (``http://127.0.0.1:8002/``): the built page (``ui/dist``) and
``/api/...``. The page and its assets are public (they hold no data); every ``/api`` route but
``POST /api/login`` wants the backend's bearer token like every other backend route.

How the page gets the token: ``gauntlet demo`` (and ``gauntlet backend serve``) print a login link
``http://127.0.0.1:8002/#login=<code>``. The part after ``#`` never leaves the browser (it is not
sent to the server, so it is in no access log); the page trades the code once, through
``POST /api/login``, for the token and keeps it in the tab's ``sessionStorage``. A code works once
and for :data:`LOGIN_CODE_TTL_SECONDS`. Without a code, the page asks for the token itself
(``var/backend-token``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from farm.loader import SpecLoadError, load_specs
from workflows.events import EventHub, EventStore
from workflows.farm_client import FarmBusy, FarmError
from workflows.fault_ledger import fault_ledger
from workflows.live import LiveSampler
from workflows.runner import ScenarioError, load_scenario

#: The backend (``workflows.backend.Backend``); not imported, because the backend imports this.
Backend = Any

#: Where ``make install`` puts the built page (``vite build`` in ``ui/``).
UI_DIST = Path(__file__).resolve().parent.parent / "ui" / "dist"
LOGIN_CODE_ENV = "GAUNTLET_CONSOLE_LOGIN_CODE"
LOGIN_CODE_TTL_SECONDS = 15 * 60
#: Wrong codes before the login code stops working (guessing it is then pointless).
LOGIN_MAX_FAILURES = 20
#: Longest wait for a running scenario to stop when the kill switch is pressed.
KILL_WAIT_SECONDS = 30.0
#: Longest chaos auto-off timer (one day).
MAX_AUTO_OFF_SECONDS = 86_400
ChaosLevelName = Literal["off", "calm", "mild", "storm", "hell"]


def is_open_path(method: str, path: str) -> bool:
    """Reachable without a token: the page, its assets, and the login-code exchange."""
    if method == "POST":
        return path == "/api/login"
    if method not in ("GET", "HEAD"):
        return False
    return path in ("/", "/index.html", "/favicon.svg") or path.startswith("/assets/")


@dataclass
class LoginCode:
    """A one-time code the page trades for the backend token (see the module docstring)."""

    code: str | None
    expires_at: float = field(default_factory=lambda: time.monotonic() + LOGIN_CODE_TTL_SECONDS)
    failures: int = 0

    def redeem(self, presented: str) -> bool:
        """True once, for the right code before it expires; wrong guesses are counted."""
        if self.code is None or time.monotonic() > self.expires_at:
            return False
        if self.failures >= LOGIN_MAX_FAILURES:
            return False
        if hmac.compare_digest(presented.encode(), self.code.encode()):
            self.code = None
            return True
        self.failures += 1
        return False


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=8, max_length=200)


class ChaosControlRequest(BaseModel):
    """``POST /api/chaos``: a level for the farm or one service, optionally switched off later."""

    model_config = ConfigDict(extra="forbid")
    level: ChaosLevelName
    service: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    auto_off_seconds: float | None = Field(default=None, gt=0, le=MAX_AUTO_OFF_SECONDS)


class ChaosTimers:
    """Auto-off timers: after the delay, chaos goes to ``off`` where it was set."""

    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.due: dict[str, float] = {}

    def cancel(self, scope: str | None = None) -> None:
        for key in list(self.tasks) if scope is None else [scope]:
            task = self.tasks.pop(key, None)
            self.due.pop(key, None)
            if task is not None:
                task.cancel()

    def view(self) -> dict[str, float]:
        """scope (``*`` or a service) -> Unix time the timer fires."""
        return dict(self.due)


class Console:
    """The console's state on the backend: hub, store, sampler, login code, chaos timers."""

    def __init__(self, backend: Backend, *, login_code: str | None) -> None:
        self.backend = backend
        settings = backend.settings
        self.store = EventStore(settings.state_dir / "console.sqlite")
        self.hub = EventHub(self.store)
        self.sampler = LiveSampler(
            self.hub, settings.farm_urls, settings.admin_token, lambda: backend.runs
        )
        self.login = LoginCode(login_code)
        self.timers = ChaosTimers()
        self.invariants = invariant_names()

    async def start(self) -> None:
        self.sampler.start()

    async def stop(self) -> None:
        self.timers.cancel()
        await self.sampler.stop()

    async def set_chaos(self, level: str, service: str | None, reason: str) -> dict[str, Any]:
        """Set chaos on every farm serving ``service`` (or every farm) and announce it."""
        farms = self.sampler.farms
        if farms is None:
            raise HTTPException(502, "the backend was started without a farm URL")
        try:
            clients = [farms.client(service)] if service else list(farms.by_url().values())
            for client in clients:
                await client.set_chaos(level, service)
        except FarmBusy as exc:
            # Chaos belongs to the run holding the farm's lease (farm/README.md "Farm lease").
            raise HTTPException(409, f"{exc}; stop that run to change its chaos") from None
        except FarmError as exc:
            if " 404" in str(exc) or "unknown_service" in str(exc):
                raise HTTPException(404, f"the farm has no service {service!r}") from None
            raise HTTPException(502, str(exc)) from None
        event = {
            "level": level,
            "service": service,
            "reason": reason,
            "timers": self.timers.view(),
        }
        run = self.running_id()
        self.hub.publish("chaos", event, run_id=run)
        return event

    def running_id(self) -> str | None:
        for rid, record in self.backend.runs.items():
            if record.status == "running":
                return rid
        return None

    def arm_timer(self, scope: str, seconds: float) -> None:
        self.timers.cancel(scope)

        async def fire() -> None:
            await asyncio.sleep(seconds)
            self.timers.tasks.pop(scope, None)
            self.timers.due.pop(scope, None)
            with contextlib.suppress(HTTPException):
                await self.set_chaos("off", None if scope == "*" else scope, "auto-off timer")

        self.timers.tasks[scope] = asyncio.create_task(fire(), name=f"chaos-auto-off:{scope}")
        self.timers.due[scope] = round(time.time() + seconds, 3)

    def last_verdict(self, runs: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The ``verdict`` event of the most recent finished run (a new page starts with it)."""
        from workflows.live import verdict_payload

        done = next((r for r in runs if r.get("status") == "done"), None)
        row = self.backend.history.get(done["id"]) if done else None
        if not row or not row.get("scorecard"):
            return None
        return verdict_payload(row["id"], row["scorecard"])

    def hello(self) -> dict[str, Any]:
        runs = self.backend.history.list(20)
        return {
            "last_tick": self.sampler.last,
            "running": self.running_id(),
            "verdict": self.last_verdict(runs),
            "runs": runs,
            "timers": self.timers.view(),
            "invariants": self.invariants,
        }


def invariant_names() -> list[str]:
    """The invariants every run is judged by, in the scorecard's order (the checker's own list,
    less ``bounded_load_amplification``, which only scenarios with a limit for it check)."""
    from workflows.invariants import INVARIANT_NAMES

    return [n for n in INVARIANT_NAMES if n != "bounded_load_amplification"]


def library(scenarios_dir: Path) -> list[dict[str, Any]]:
    """Every scenario file of the library, parsed (a broken file is listed with its problem)."""
    out = []
    for path in sorted(scenarios_dir.glob("*.yaml")):
        try:
            spec = load_scenario(path)
        except ScenarioError as exc:
            out.append({"name": path.stem, "file": path.stem, "error": str(exc)})
            continue
        out.append({"name": spec.name, "file": path.stem, "spec": spec.model_dump(mode="json")})
    return out


def service_views(
    configs: list[Path], last_tick: dict[str, Any] | None, counters: dict[str, Any]
) -> list[dict[str, Any]]:
    """The farm's services as the spec describes them, with the latest live counters."""
    specs = load_specs(configs)
    live = (last_tick or {}).get("services", {})
    chaos = ((last_tick or {}).get("chaos") or {}).get("services", {})
    out = []
    for spec in sorted(specs, key=lambda s: s.id):
        styles = sorted({r.pagination.style.value for r in spec.resources if r.pagination})
        tenants = []
        for tenant in spec.tenants:
            limit = spec.rate_limit_for(tenant.id)
            counts = (counters.get(spec.id) or {}).get(tenant.id, {})
            tenants.append(
                {
                    "id": tenant.id,
                    "max_rps": limit.max_rps,
                    "burst": limit.burst,
                    "counters": counts,
                }
            )
        out.append(
            {
                "id": spec.id,
                "display_name": spec.display_name or spec.id,
                "auth": spec.auth.type.value,
                "token_ttl_seconds": spec.auth.token_ttl_seconds
                if spec.auth.type.value == "oauth2_client_credentials"
                else None,
                "rotate_token_every_calls": spec.auth.rotate_token_every_calls,
                "dialect": f"{spec.protocol} · {'/'.join(styles) or 'unpaginated'} pagination",
                "base_path": spec.base_path,
                "schema_version": live.get(spec.id, {}).get("schema_version", spec.schema_.version),
                "resources": [r.name for r in spec.resources],
                "error_preset": spec.error_profile.preset.value
                if spec.error_profile.preset
                else None,
                "idempotency": spec.idempotency.model_dump(mode="json"),
                "drift_steps": len(spec.drift_schedule),
                "chaos": chaos.get(spec.id),
                "tenants": tenants,
            }
        )
    return out


def _index_response(dist: Path) -> Response:
    index = dist / "index.html"
    if not index.exists():
        return HTMLResponse(
            "<!doctype html><title>AAM Gauntlet console</title><h1>Console not built</h1>"
            f"<p>{index} is missing: run <code>make install</code> (it runs <code>npm ci</code>"
            " and <code>vite build</code> in <code>ui/</code>).</p>",
            status_code=503,
        )
    return FileResponse(index, headers={"Cache-Control": "no-cache"})


def mount_console(app: FastAPI, backend: Backend, *, dist: Path | None = None) -> Console:
    """Add the console's routes to the backend app; returns its state (start/stop it)."""
    from workflows.html_report import render_report

    dist = dist or UI_DIST
    console = Console(backend, login_code=os.environ.get(LOGIN_CODE_ENV, "").strip() or None)
    app.state.console = console
    api = APIRouter(prefix="/api")

    @app.get("/", include_in_schema=False)
    @app.get("/index.html", include_in_schema=False)
    async def index() -> Response:
        return _index_response(dist)

    @app.get("/assets/{name:path}", include_in_schema=False)
    async def asset(name: str) -> Response:
        root = (dist / "assets").resolve()
        path = (root / name).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise HTTPException(404, f"no asset {name!r}")
        return FileResponse(path, headers={"Cache-Control": "public, max-age=31536000, immutable"})

    @app.get("/favicon.svg", include_in_schema=False)
    async def favicon() -> Response:
        path = dist / "favicon.svg"
        if not path.is_file():
            raise HTTPException(404, "no favicon")
        return FileResponse(path)

    @api.post("/login")
    async def login(req: LoginRequest) -> dict[str, Any]:
        if not console.login.redeem(req.code):
            raise HTTPException(
                403,
                "login code unknown, used or expired: paste the token from "
                f"{backend.settings.state_dir / 'backend-token'} instead",
            )
        return {"token": app.state.backend_token}

    @api.get("/session")
    async def session() -> dict[str, Any]:
        return {"ok": True, "state_dir": str(backend.settings.state_dir)}

    @api.get("/stream")
    async def stream(request: Request) -> StreamingResponse:
        first = console.hub.hello(console.hello())
        return StreamingResponse(
            console.hub.stream(first),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @api.get("/figures")
    async def figures() -> dict[str, Any]:
        return {"bytes_sent": console.hub.bytes_sent, "subscribers": console.hub.subscribers}

    @api.get("/services")
    async def services() -> dict[str, Any]:
        try:
            views = service_views(
                backend.settings.configs, console.sampler.last, console.sampler.tenants
            )
        except SpecLoadError as exc:
            raise HTTPException(422, f"service specs are invalid: {exc}") from None
        last = console.sampler.last or {}
        return {
            "services": views,
            "chaos": last.get("chaos"),
            "farm_error": console.sampler.farm_error,
            "timers": console.timers.view(),
        }

    @api.get("/scenarios")
    async def scenarios() -> dict[str, Any]:
        from aam.profile import Defence
        from workflows.backend_models import ScenarioRequest

        return {
            "scenarios": library(backend.settings.scenarios_dir),
            "profiles": ["full", "naive", *[f"full-{d.value}" for d in Defence]],
            "services": sorted(s.id for s in load_specs(backend.settings.configs)),
            # An external AAM under test (by URL) is offered only once the run API takes one.
            "external_aam": "aam_url" in ScenarioRequest.model_fields,
        }

    @api.post("/chaos")
    async def chaos(req: ChaosControlRequest) -> dict[str, Any]:
        scope = req.service or "*"
        if scope == "*":
            console.timers.cancel()
        else:
            console.timers.cancel(scope)
        if req.auto_off_seconds and req.level != "off":
            console.arm_timer(scope, req.auto_off_seconds)
        return await console.set_chaos(req.level, req.service, "set from the console")

    @api.post("/chaos/kill")
    async def kill_switch() -> dict[str, Any]:
        # A run holds the farm's chaos (its lease): the kill switch stops it first, then turns
        # every service off. A run's chaos is not changed under it (its verdict would be wrong).
        console.timers.cancel()
        stopped = backend.stop_batch("stopped by the kill switch")
        if stopped and not await backend.wait_stopped(KILL_WAIT_SECONDS):
            raise HTTPException(409, "the running scenario did not stop in time; try again")
        event = await console.set_chaos("off", None, "kill switch")
        return {**event, "stopped": stopped}

    @api.post("/runs/stop")
    async def stop_run() -> dict[str, Any]:
        stopped = backend.stop_batch("stopped from the console")
        if not stopped:
            raise HTTPException(409, "no scenario is running")
        return {"stopped": stopped}

    @api.get("/runs/{run_id}/events")
    async def run_events(
        run_id: str, kinds: str | None = Query(None, pattern=r"^[a-z,]+$")
    ) -> dict[str, Any]:
        _known_run(backend, run_id)
        wanted = tuple(k for k in (kinds or "").split(",") if k) or None
        return {"run_id": run_id, "events": console.store.events(run_id, wanted)}

    @api.get("/runs/{run_id}/faults")
    async def run_faults(run_id: str) -> dict[str, Any]:
        _known_run(backend, run_id)
        return {"run_id": run_id, "faults": fault_ledger(console.store.events(run_id, ("tick",)))}

    @api.get("/runs/{run_id}/report.html")
    async def report(run_id: str) -> Response:
        row = _known_run(backend, run_id)
        html = render_report(row, console.store.events(run_id))
        return HTMLResponse(
            html,
            headers={"Content-Disposition": f'attachment; filename="gauntlet-{run_id}.html"'},
        )

    app.include_router(api)
    return console


def _known_run(backend: Backend, run_id: str) -> dict[str, Any]:
    row = backend.history.get(run_id)
    if row is None:
        live = backend.runs.get(run_id)
        if live is None:
            raise HTTPException(404, f"no run {run_id!r}")
        return {
            "id": live.id,
            "scenario": live.scenario,
            "mode": live.mode,
            "profile": live.profile,
            "status": live.status,
            "scorecard": live.scorecard,
            "error": live.error,
        }
    return row
