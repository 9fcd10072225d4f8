"""The AAM backend API over real loopback HTTP, against a real farm."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from workflows.backend import BackendSettings, create_app

TOKEN = "test-backend-token-0123456789"


@contextlib.asynccontextmanager
async def serving(app: object) -> AsyncIterator[str]:
    """Serve an ASGI app on 127.0.0.1:0 in this loop; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "backend did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=15)


@pytest.fixture
async def backend(farm_url: tuple[str, str], tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    url, token = farm_url
    settings = BackendSettings(
        farm_urls={"*": url}, admin_token=token, state_dir=tmp_path / "b", token=TOKEN
    )
    app = create_app(settings)
    async with (
        serving(app) as base,
        httpx.AsyncClient(
            base_url=base, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as client,
    ):
        client.app_backend = app.state.backend  # type: ignore[attr-defined]
        yield client


PROTECTED = [
    ("GET", "/connectors"),
    ("POST", "/connectors"),
    ("GET", "/workflows"),
    ("POST", "/workflows/run"),
    ("POST", "/scenarios/run"),
    ("POST", "/demo/run_scenario"),
    ("GET", "/runs"),
    ("GET", "/runs/some-run"),
    ("GET", "/dlq"),
    ("POST", "/dlq/replay"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
    ("GET", "/no/such/path"),
]


async def test_every_endpoint_but_health_and_metrics_wants_the_token(
    backend: httpx.AsyncClient,
) -> None:
    anonymous = {"Authorization": ""}
    for method, path in PROTECTED:
        none = await backend.request(method, path, headers=anonymous)
        assert none.status_code == 401, (method, path, none.status_code)
        assert none.headers["www-authenticate"] == "Bearer"
        wrong = await backend.request(method, path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403, (method, path, wrong.status_code)
        basic = await backend.request(method, path, headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401, (method, path)
        assert TOKEN not in none.text + wrong.text
    assert (await backend.get("/health", headers=anonymous)).status_code == 200
    assert (await backend.get("/metrics", headers=anonymous)).status_code == 200
    # Open means GET only: the open paths are not a way around the token for other methods.
    assert (await backend.post("/health", headers=anonymous)).status_code == 401
    # Nothing was started by the refused requests.
    assert (await backend.get("/runs")).json()["runs"] == []


async def test_no_endpoint_returns_a_secret_or_an_access_token(
    backend: httpx.AsyncClient, farm_url: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    url, admin = farm_url
    async with httpx.AsyncClient(base_url=url, timeout=10) as farm:
        creds = (
            await farm.get("/admin/credentials", headers={"Authorization": f"Bearer {admin}"})
        ).json()["services"]
    secrets = {
        str(v)
        for service in ("salesforce", "stripe")
        for k, v in creds[service]["acme"].items()
        if k in ("client_secret", "api_key") and v
    }
    assert len(secrets) >= 2, creds  # an OAuth client secret and an API key at least
    for service in ("salesforce", "stripe"):
        created = await backend.post("/connectors", json={"service": service, "tenant": "acme"})
        assert created.status_code == 201, created.text
    ran = await backend.post(
        "/workflows/run",
        json={"workflow": "high_volume_read", "connector": "salesforce:acme", "iterations": 2},
    )
    assert ran.status_code == 200 and ran.json()["iterations"][0]["ok"], ran.text
    # The access token the backend's connector holds right now.
    app_backend = backend_app_state(backend)
    conn = app_backend.mesh.connector("salesforce:acme")
    access_token, _ = await conn.lifecycle.token()
    secrets.add(access_token)
    bodies = [
        (await backend.request(method, path)).text
        for method, path in [
            ("GET", "/connectors"),
            ("GET", "/workflows"),
            ("GET", "/runs"),
            ("GET", "/health"),
            ("GET", "/metrics"),
        ]
    ]
    bodies.append(ran.text)
    bodies.append(created.text)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in secrets | {TOKEN}:
        for body in bodies:
            assert secret not in body
        assert secret not in logged


def backend_app_state(client: httpx.AsyncClient) -> Any:
    """The in-process Backend behind ``client`` (the app is served from this test's loop)."""
    return client.app_backend  # type: ignore[attr-defined]


def test_the_token_comes_from_the_env_else_a_0600_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from workflows.backend import TOKEN_ENV, read_token, resolve_token

    monkeypatch.setenv(TOKEN_ENV, "from-the-env")
    assert resolve_token(tmp_path / "a") == "from-the-env"
    assert not (tmp_path / "a" / "backend-token").exists()
    monkeypatch.delenv(TOKEN_ENV)
    caplog.set_level("INFO")
    token = resolve_token(tmp_path / "b")
    path = tmp_path / "b" / "backend-token"
    assert len(token) >= 32 and path.read_text() == token
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_token(tmp_path / "b") == token
    assert str(path) in caplog.text and token not in caplog.text
    path.chmod(0o644)  # a regenerated token tightens an old file too
    again = resolve_token(tmp_path / "b")
    assert again != token and path.stat().st_mode & 0o777 == 0o600


async def test_health_workflows_and_metrics(backend: httpx.AsyncClient) -> None:
    assert (await backend.get("/health")).json()["status"] == "ok"
    names = {w["name"] for w in (await backend.get("/workflows")).json()["workflows"]}
    assert {"high_volume_read", "idempotent_write", "drift_sensitive_read"} <= names
    metrics = await backend.get("/metrics")
    assert metrics.status_code == 200
    assert "gauntlet_scenario_runs_total" in metrics.text


async def test_connectors_and_a_workflow_run(backend: httpx.AsyncClient) -> None:
    bad = await backend.post("/connectors", json={"service": "Stripe!", "tenant": "acme"})
    assert bad.status_code == 422 and "service" in bad.json()["detail"]
    unknown = await backend.post("/connectors", json={"service": "nosuch", "tenant": "acme"})
    assert unknown.status_code == 404 and "nosuch" in unknown.json()["detail"]
    created = await backend.post("/connectors", json={"service": "stripe", "tenant": "acme"})
    assert created.status_code == 201, created.text
    assert created.json()["id"] == "stripe:acme"
    again = await backend.post("/connectors", json={"service": "stripe", "tenant": "acme"})
    assert again.status_code == 409
    ran = await backend.post(
        "/workflows/run",
        json={"workflow": "high_volume_read", "connector": "stripe:acme", "params": {"pages": 1}},
    )
    assert ran.status_code == 200, ran.text
    assert ran.json()["iterations"][0]["ok"] is True
    listed = (await backend.get("/connectors")).json()["connectors"]
    assert listed[0]["stats"]["successes"] >= 1
    missing = await backend.post(
        "/workflows/run", json={"workflow": "nope", "connector": "stripe:acme"}
    )
    assert missing.status_code == 404
    wrong_param = await backend.post(
        "/workflows/run",
        json={"workflow": "high_volume_read", "connector": "stripe:acme", "params": {"x": 1}},
    )
    assert wrong_param.status_code == 422


@pytest.mark.slow
async def test_a_scenario_runs_in_the_background_and_reports_its_scorecard(
    backend: httpx.AsyncClient,
) -> None:
    spec = {
        "name": "api-test",
        "mode": "mild",
        "duration_seconds": 2,
        "services": ["stripe"],
        "tenants": ["acme"],
        "workflows": [
            {"name": "high_volume_read", "concurrency": 1},
            {"name": "idempotent_write", "concurrency": 1},
        ],
    }
    started = await backend.post("/scenarios/run", json={"spec": spec})
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    busy = await backend.post("/scenarios/run", json={"spec": spec})
    assert busy.status_code == 409
    record: dict[str, object] = {}
    for _ in range(200):  # bounded wait: 2 s run + drain + checks
        record = (await backend.get(f"/runs/{run_id}")).json()
        if record["status"] in ("done", "error"):
            break
        await asyncio.sleep(0.2)
    assert record["status"] == "done", record.get("error")
    card = record["scorecard"]
    assert isinstance(card, dict) and card["verdict"] in ("PASSED", "FAILED")
    assert {i["name"] for i in card["invariants"]} >= {"no_lost_writes", "no_duplicate_writes"}
    metrics = (await backend.get("/metrics")).text
    for name in ("aam_calls_total", "gauntlet_workflow_runs_total", "gauntlet_scenario_verdict"):
        assert name in metrics
    assert 'gauntlet_scenario_invariant_status{invariant="no_lost_writes"' in metrics
    runs = (await backend.get("/runs")).json()["runs"]
    assert any(r["id"] == run_id and r["verdict"] == card["verdict"] for r in runs)
    dlq = await backend.get("/dlq", params={"run_id": run_id})
    assert dlq.status_code == 200 and isinstance(dlq.json()["entries"], list)
    replay = await backend.post("/dlq/replay", json={"run_id": run_id})
    assert replay.status_code == 200, replay.text
    assert "replayed" in replay.json()["report"]


async def test_bad_scenario_requests_get_4xx_with_a_reason(backend: httpx.AsyncClient) -> None:
    both = await backend.post("/scenarios/run", json={"scenario": "storm", "spec": {}})
    assert both.status_code == 422 and "exactly one" in both.json()["detail"]
    unknown = await backend.post("/scenarios/run", json={"scenario": "nosuch"})
    assert unknown.status_code == 404 and "storm" in unknown.json()["detail"]
    invalid = await backend.post(
        "/scenarios/run", json={"spec": {"name": "x", "services": [], "workflows": []}}
    )
    assert invalid.status_code == 422 and "spec.services" in invalid.json()["detail"]
    mode = await backend.post("/demo/run_scenario", params={"mode": "tornado"})
    assert mode.status_code == 422
    profile = await backend.post("/scenarios/run", json={"scenario": "storm", "profile": "brave"})
    assert profile.status_code == 422 and "profile" in profile.json()["detail"]
    assert (await backend.get("/runs/nope")).status_code == 404
    assert (await backend.get("/dlq")).status_code == 404  # no runs yet


def test_serve_names_the_token_file_once_and_a_taken_port_is_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    import socket

    import uvicorn

    from workflows.backend import TOKEN_ENV, BackendSettings, serve

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    caplog.set_level("INFO")
    serve(BackendSettings({}, None, state_dir=tmp_path), port=0)
    said = capsys.readouterr().err + caplog.text
    assert said.count(str(tmp_path / "backend-token")) == 1, said
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(SystemExit) as exited:
            serve(BackendSettings({}, None, state_dir=tmp_path), port=port)
    assert exited.value.code == 2
    assert f"127.0.0.1:{port} is already in use" in capsys.readouterr().err


def test_a_taken_port_is_detected_before_serving() -> None:
    import socket

    from workflows.backend import port_is_free

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert not port_is_free("127.0.0.1", sock.getsockname()[1])
