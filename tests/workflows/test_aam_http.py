"""The AAM-under-test contract over HTTP.

- Conformance: the standard scenarios give the same verdicts with the reference AAM in-process
  and behind ``gauntlet aam serve`` (a real child process on an ephemeral port) driven through
  ``--aam-url``; the naive reference AAM behind the same server is FAILED both ways.
- An unreachable or misbehaving AAM (non-JSON, its own 5xx, wrong shapes, a refused token) is a
  clear error naming the call, exit 2, never a traceback.
- The server side (:mod:`aam.http_api`): token, bad input as 4xx naming the field.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from wf_helpers import preseeded, scenario, write_specs

from farm.server import running_farm
from workflows.mutation_table import fresh_farm
from workflows.runner import ScenarioError, run_scenario, with_overrides

STANDARD_WORKFLOWS = [
    {"name": "high_volume_read", "concurrency": 2},
    {"name": "idempotent_write", "concurrency": 2},
    {"name": "drift_sensitive_read", "concurrency": 1, "services": ["salesforce"]},
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def aam_server(state_dir: Path, token: str, profile: str = "full") -> Iterator[str]:
    """``gauntlet aam serve`` in a child process; yields its URL; stopped by its pid."""
    port = free_port()
    env = {**os.environ, "GAUNTLET_AAM_TOKEN": token}
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "workflows", "aam", "serve", "--port", str(port)),
            *("--state-dir", str(state_dir), "--profile", profile),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"aam serve exited {proc.returncode}: {proc.stderr.read()}")  # type: ignore[union-attr]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError("aam serve did not answer /health within 30 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _runs(
    tmp_path: Path, mode: str, aam_url: str | None, profile: str, token: str, seconds: float = 5
) -> Any:
    specs = preseeded("stripe", "salesforce", "netsuite", "github")
    configs = write_specs(specs, tmp_path / "configs")
    spec = scenario(
        mode=mode,
        duration_seconds=seconds,
        services=[s.id for s in specs],
        tenants=["acme"],
        workflows=STANDARD_WORKFLOWS,
    )
    async with fresh_farm(
        specs,
        tmp_path,
        seed=spec.seed,
        configs=[configs],
        progress_interval=0.2,
        aam_url=aam_url,
        aam_token=token,
    ) as options:
        return await run_scenario(with_overrides(spec, profile=profile), options)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["mild", "storm", "hell"])
async def test_the_reference_aam_gets_the_same_verdict_in_process_and_over_http(
    tmp_path: Path, mode: str
) -> None:
    token = "t-" + "x" * 30
    # storm/hell cut github to 5/2 rps with a bucket of 2/1: the AAM, told 10 rps, needs a few
    # seconds of the wire to find that out; 5 s would be mostly learning.
    seconds = {"mild": 5, "storm": 10, "hell": 30}[mode]
    local = await _runs(tmp_path / "local", mode, None, "full", token, seconds)
    with aam_server(tmp_path / "aam", token) as url:
        remote = await _runs(tmp_path / "remote", mode, url, "full", token, seconds)
    assert local.verdict == remote.verdict == "PASSED", (
        [(i.name, i.detail) for i in local.invariants if not i.passed],
        [(i.name, i.detail) for i in remote.invariants if not i.passed],
    )
    assert local.failed_invariants() == remote.failed_invariants() == []
    assert remote.profile == "external"
    assert remote.totals()["successes"] > 0
    assert remote.invariant("no_lost_writes").figures["promised"] > 0


@pytest.mark.slow
async def test_the_naive_reference_aam_fails_over_http_as_it_does_in_process(
    tmp_path: Path,
) -> None:
    token = "t-" + "y" * 30
    local = await _runs(tmp_path / "local", "storm", None, "naive", token)
    with aam_server(tmp_path / "aam", token, profile="naive") as url:
        remote = await _runs(tmp_path / "remote", "storm", url, "full", token)
    assert local.verdict == remote.verdict == "FAILED"
    assert "rate_limit_etiquette" in set(local.failed_invariants()) & set(
        remote.failed_invariants()
    )


async def test_gauntlet_run_with_an_unreachable_aam_exits_2_naming_the_call(
    tmp_path: Path,
) -> None:
    specs = preseeded("stripe", "salesforce")
    configs = write_specs(specs, tmp_path / "configs")
    scenario_file = tmp_path / "s.yaml"
    scenario_file.write_text(
        "name: s\nduration_seconds: 2\nservices: [stripe, salesforce]\n"
        "workflows: [{name: high_volume_read}]\n"
    )
    async with running_farm(specs, state_dir=tmp_path / "farm") as farm:
        token_file = tmp_path / "admin-token"
        token_file.write_text(farm.admin_token)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "workflows", "run", str(scenario_file),
            "--aam-url", f"http://127.0.0.1:{free_port()}", "--state-dir", str(tmp_path / "st"),
            "--farm-url", farm.url, "--admin-token-file", str(token_file),
            "--configs", str(configs), "--no-live",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    text = err.decode()
    assert proc.returncode == 2, out.decode() + text
    assert "ERROR" in text and "GET /health" in text, text
    assert "Traceback" not in text


async def test_an_unreachable_aam_with_a_real_farm_names_get_health(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        await _runs(tmp_path, "mild", f"http://127.0.0.1:{free_port()}", "full", "tok")
    text = str(info.value)
    assert text.startswith("ERROR:") and "GET /health" in text and "no answer" in text


class Misbehaving:
    """A fake AAM that answers the control calls properly and breaks ``POST /calls``."""

    def __init__(self, how: str) -> None:
        self.how = how

    def app(self) -> Starlette:
        async def ok(_: Request) -> Response:
            return JSONResponse({"status": "ok"})

        async def calls(_: Request) -> Response:
            if self.how == "not_json":
                return Response(b"<html>oops</html>", media_type="text/html")
            if self.how == "server_error":
                return Response(b"internal error", status_code=500)
            if self.how == "wrong_shape":
                return JSONResponse({"ok": False})  # no error_class
            return JSONResponse({"ok": True, "error_class": "teapot"})

        return Starlette(
            routes=[
                Route("/health", ok),
                Route("/gauntlet/v1/connectors", ok, methods=["DELETE"]),
                Route("/gauntlet/v1/connectors/{cid}", ok, methods=["PUT"]),
                Route("/gauntlet/v1/calls", calls, methods=["POST"]),
                Route("/gauntlet/v1/dlq/replay", ok, methods=["POST"]),
            ]
        )


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("not_json", "the body is not JSON"),
        ("server_error", "HTTP 500"),
        ("wrong_shape", "error_class"),
        ("bad_class", "not an outcome"),
    ],
)
async def test_a_misbehaving_aam_is_an_error_naming_the_call(
    tmp_path: Path, how: str, expected: str
) -> None:
    async with serving(Misbehaving(how).app()) as url:
        with pytest.raises(ScenarioError) as info:
            await _runs(tmp_path, "mild", url, "full", "tok")
    text = str(info.value)
    assert text.startswith("ERROR:"), text
    assert "POST /gauntlet/v1/calls (" in text and expected in text, text


# -- the server side -------------------------------------------------------------------------
@pytest.fixture
async def reference(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    from aam.profile import AamProfile
    from aam.server import create_app

    app = create_app(tmp_path / "aam", AamProfile(), "secret-token")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://aam") as client:
            yield client


DESCRIPTOR = {
    "connector_id": "svc:acme",
    "service": "svc",
    "tenant": "acme",
    "base_url": "http://127.0.0.1:9/svc",
    "auth": {"type": "api_key", "header": "X-API-Key", "key": "k-very-secret-1234"},
    "resources": {"items": {"collection": "/items", "fields": {"id": "id"}}},
}
AUTH = {"Authorization": "Bearer secret-token"}


async def test_the_server_wants_its_token_except_on_health(
    reference: httpx.AsyncClient,
) -> None:
    assert (await reference.get("/health")).status_code == 200
    url = "/gauntlet/v1/connectors/svc:acme"
    assert (await reference.put(url, json=DESCRIPTOR)).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await reference.put(url, json=DESCRIPTOR, headers=wrong)).status_code == 403
    put = await reference.put(url, json=DESCRIPTOR, headers=AUTH)
    assert put.status_code == 200 and "k-very-secret" not in put.text


async def test_bad_input_is_a_4xx_naming_the_field(reference: httpx.AsyncClient) -> None:
    url = "/gauntlet/v1/connectors/svc:acme"
    bad = await reference.put(url, content=b"{nope", headers=AUTH)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_json"
    missing = {k: v for k, v in DESCRIPTOR.items() if k != "base_url"}
    refused = await reference.put(url, json=missing, headers=AUTH)
    assert refused.status_code == 422 and "base_url" in refused.json()["detail"]
    other = await reference.put("/gauntlet/v1/connectors/x:y", json=DESCRIPTOR, headers=AUTH)
    assert other.status_code == 422 and "connector_id" in other.json()["detail"]
    call = await reference.post(
        "/gauntlet/v1/calls", json={"connector_id": "svc:acme", "method": "PATCH"}, headers=AUTH
    )
    assert call.status_code == 422 and "method" in call.json()["detail"]
    assert (await reference.get("/nowhere", headers=AUTH)).status_code == 404


async def test_an_unknown_connector_and_a_dead_api_are_outcomes_not_errors(
    reference: httpx.AsyncClient,
) -> None:
    unknown = await reference.post(
        "/gauntlet/v1/calls",
        json={"connector_id": "nobody:here", "method": "GET", "path": "/items"},
        headers=AUTH,
    )
    assert unknown.status_code == 200
    assert unknown.json()["ok"] is False and unknown.json()["error_class"] == "client_error"
    await reference.put("/gauntlet/v1/connectors/svc:acme", json=DESCRIPTOR, headers=AUTH)
    dead = await reference.post(  # port 9 (discard) refuses: a network error, classified
        "/gauntlet/v1/calls",
        json={"connector_id": "svc:acme", "method": "GET", "path": "/items", "deadline_ms": 5000},
        headers=AUTH,
    )
    assert dead.status_code == 200
    assert dead.json()["error_class"] in ("network_error", "timeout")
    replay = await reference.post("/gauntlet/v1/dlq/replay", headers=AUTH)
    assert replay.json() == {"replayed": 0, "failed": 0, "pending": 0}
    dropped = await reference.delete("/gauntlet/v1/connectors", headers=AUTH)
    assert dropped.status_code == 200
