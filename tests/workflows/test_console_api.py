"""The web console's backend side over real loopback HTTP, against a real farm: the page and its
assets, the login code, the event stream, chaos controls, stored run events and the report."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_wf_backend import TOKEN, serving

from workflows import console_api
from workflows.backend import BackendSettings, create_app
from workflows.console_api import LOGIN_MAX_FAILURES, LoginCode, fault_ledger
from workflows.health import AMBER_ERROR_RATIO, BANDS, RED_ERROR_RATIO
from workflows.html_report import render_report
from workflows.live import TopologyWindow, parse_faults, topology

REPO = Path(__file__).resolve().parents[2]
CODE = "one-time-login-code-42"


@pytest.fixture
def dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for ui/dist (the real build is exercised by the browser tests)."""
    folder = tmp_path / "dist"
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text("<!doctype html><div id=root></div>", encoding="utf-8")
    (folder / "assets" / "app.js").write_text("console.log(1)", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("not an asset", encoding="utf-8")
    monkeypatch.setattr(console_api, "UI_DIST", folder)
    return folder


@pytest.fixture
async def console(
    farm_url: tuple[str, str], tmp_path: Path, dist: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv(console_api.LOGIN_CODE_ENV, CODE)
    url, admin = farm_url
    settings = BackendSettings(
        farm_urls={"*": url}, admin_token=admin, state_dir=tmp_path / "b", token=TOKEN
    )
    app = create_app(settings)
    async with (
        serving(app) as base,
        httpx.AsyncClient(
            base_url=base, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as client,
    ):
        client.app_state = app.state  # type: ignore[attr-defined]
        yield client


async def next_events(
    client: httpx.AsyncClient, wanted: set[str], *, limit: float = 20.0, until: Any = None
) -> list[tuple[str, dict[str, Any]]]:
    """Read the stream until an event of every ``wanted`` kind came (and ``until(kind, data)``
    is true, when given), bounded by ``limit`` seconds."""
    seen: list[tuple[str, dict[str, Any]]] = []
    kinds: set[str] = set()

    async def read() -> None:
        async with client.stream("GET", "/api/stream") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            kind = ""
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    seen.append((kind, data))
                    kinds.add(kind)
                    if wanted <= kinds and (until is None or until(kind, data)):
                        return

    await asyncio.wait_for(read(), timeout=limit)
    return seen


async def test_the_page_is_open_its_api_is_not(console: httpx.AsyncClient) -> None:
    anonymous = {"Authorization": ""}
    page = await console.get("/", headers=anonymous)
    assert page.status_code == 200 and "root" in page.text
    assert (await console.get("/assets/app.js", headers=anonymous)).status_code == 200
    for escape in ("/assets/../secret.txt", "/assets/%2e%2e/secret.txt", "/assets/nope.js"):
        response = await console.get(escape, headers=anonymous)
        assert response.status_code in (401, 404), escape
        assert "not an asset" not in response.text
    for method, path in [
        ("GET", "/api/stream"),
        ("GET", "/api/services"),
        ("GET", "/api/scenarios"),
        ("GET", "/api/session"),
        ("POST", "/api/chaos"),
        ("POST", "/api/chaos/kill"),
        ("POST", "/api/runs/stop"),
        ("GET", "/api/runs/x/events"),
        ("GET", "/api/runs/x/report.html"),
        ("POST", "/"),
        ("DELETE", "/assets/app.js"),
    ]:
        refused = await console.request(method, path, headers=anonymous)
        assert refused.status_code == 401, (method, path, refused.status_code)
    assert (await console.get("/api/session")).status_code == 200


async def test_without_a_build_the_page_says_how_to_make_it(
    console: httpx.AsyncClient, dist: Path
) -> None:
    (dist / "index.html").unlink()
    page = await console.get("/", headers={"Authorization": ""})
    assert page.status_code == 503 and "make install" in page.text


async def test_the_login_code_works_once(console: httpx.AsyncClient) -> None:
    anonymous = {"Authorization": ""}
    wrong = await console.post("/api/login", json={"code": "not-the-code"}, headers=anonymous)
    assert wrong.status_code == 403 and TOKEN not in wrong.text
    first = await console.post("/api/login", json={"code": CODE}, headers=anonymous)
    assert first.status_code == 200 and first.json() == {"token": TOKEN}
    again = await console.post("/api/login", json={"code": CODE}, headers=anonymous)
    assert again.status_code == 403 and "backend-token" in again.json()["detail"]
    short = await console.post("/api/login", json={"code": "x"}, headers=anonymous)
    assert short.status_code == 422


def test_a_login_code_stops_working_after_many_wrong_guesses_or_when_expired() -> None:
    code = LoginCode("right-code-123")
    for _ in range(LOGIN_MAX_FAILURES):
        assert not code.redeem("wrong-code-123")
    assert not code.redeem("right-code-123")
    expired = LoginCode("right-code-123", expires_at=0.0)
    assert not expired.redeem("right-code-123")


async def test_the_stream_says_hello_then_ticks_with_the_farm_topology(
    console: httpx.AsyncClient,
) -> None:
    events = await next_events(console, {"hello", "tick"})
    hello = next(d for k, d in events if k == "hello")
    assert "no_lost_writes" in hello["invariants"]
    tick = next(d for k, d in events if k == "tick")
    nodes = {n["id"]: n for n in tick["topology"]["nodes"]}
    assert {"svc:stripe", "svc:salesforce"} <= set(nodes)
    assert nodes["svc:stripe"]["state"] == "idle" and nodes["svc:stripe"]["ratio"] is None
    assert tick["chaos"]["level"] == "calm"
    assert tick["run"] is None
    assert (await console.get("/api/figures")).json()["bytes_sent"] > 0


async def test_chaos_for_a_service_the_farm_the_timer_and_the_kill_switch(
    console: httpx.AsyncClient, farm_url: tuple[str, str]
) -> None:
    url, admin = farm_url
    farm = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {admin}"})

    async def farm_chaos() -> dict[str, Any]:
        return (await farm.get("/admin/status")).json()["chaos"]

    try:
        one = await console.post("/api/chaos", json={"level": "hell", "service": "stripe"})
        assert one.status_code == 200, one.text
        assert (await farm_chaos())["services"]["stripe"] == "hell"
        assert (await farm_chaos())["services"]["salesforce"] == "calm"
        timed = await console.post("/api/chaos", json={"level": "storm", "auto_off_seconds": 0.5})
        assert timed.status_code == 200 and "*" in timed.json()["timers"]
        assert (await farm_chaos())["level"] == "storm"
        # The timer fires: the farm goes to off, and the stream says so.
        events = await next_events(
            console, {"chaos"}, until=lambda k, d: k == "chaos" and d["reason"] == "auto-off timer"
        )
        assert events[-1][1]["level"] == "off"
        assert (await farm_chaos())["level"] == "off"
        await console.post("/api/chaos", json={"level": "mild", "auto_off_seconds": 600})
        kill = await console.post("/api/chaos/kill")
        assert kill.status_code == 200 and kill.json()["timers"] == {}
        assert (await farm_chaos())["level"] == "off"
    finally:
        await farm.aclose()


async def test_bad_chaos_requests_get_4xx_with_a_reason(console: httpx.AsyncClient) -> None:
    for body, status in [
        ({"level": "tornado"}, 422),
        ({"level": "storm", "auto_off_seconds": -1}, 422),
        ({"level": "storm", "auto_off_seconds": 10**9}, 422),
        ({"level": "storm", "service": "NOT A NAME"}, 422),
        ({"level": "storm", "extra": 1}, 422),
        ({"level": "storm", "service": "nosuchservice"}, 404),
    ]:
        response = await console.post("/api/chaos", json=body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["detail"]
    assert (await console.post("/api/runs/stop")).status_code == 409
    assert (await console.get("/api/runs/nope/events")).status_code == 404
    assert (await console.get("/api/runs/x/events", params={"kinds": "a;b"})).status_code == 422


async def test_services_and_the_scenario_library(console: httpx.AsyncClient) -> None:
    services = (await console.get("/api/services")).json()["services"]
    stripe = next(s for s in services if s["id"] == "stripe")
    assert stripe["auth"] and stripe["dialect"].startswith("rest")
    assert stripe["tenants"][0]["max_rps"] > 0
    library = (await console.get("/api/scenarios")).json()
    names = {s["file"] for s in library["scenarios"]}
    assert {"storm", "mild", "hell"} <= names
    assert {"full", "naive"} <= set(library["profiles"])


@pytest.mark.slow
async def test_a_run_is_streamed_stored_and_reported(console: httpx.AsyncClient) -> None:
    spec = {
        "name": "console-test",
        "mode": "storm",
        "duration_seconds": 3,
        "services": ["stripe"],
        "tenants": ["acme"],
        "workflows": [
            {"name": "high_volume_read", "concurrency": 1},
            {"name": "idempotent_write", "concurrency": 1},
        ],
    }
    started = await console.post("/scenarios/run", json={"spec": spec, "profile": "full"})
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    events = await next_events(
        console, {"tick", "verdict"}, limit=90, until=lambda k, d: k == "verdict"
    )
    running = [d for k, d in events if k == "tick" and d["run"]]
    assert running and running[-1]["run"]["id"] == run_id
    assert "stripe:acme" in running[-1]["connectors"]
    ids = {n["id"] for n in running[-1]["topology"]["nodes"]}
    assert {"svc:stripe", "conn:stripe:acme"} <= ids
    verdict = events[-1][1]
    assert verdict["run_id"] == run_id and verdict["verdict"] in ("PASSED", "FAILED")
    assert {i["status"] for i in verdict["invariants"]} <= {"pass", "fail", "not_exercised"}

    # A page opened after the run starts with its verdict.
    hello = (await next_events(console, {"hello"}))[0][1]
    assert hello["running"] is None and hello["verdict"]["run_id"] == run_id

    stored = (await console.get(f"/api/runs/{run_id}/events")).json()["events"]
    kinds = [e["kind"] for e in stored]
    assert "run" in kinds and "verdict" in kinds and kinds.count("tick") >= 2
    faults = (await console.get(f"/api/runs/{run_id}/faults")).json()["faults"]
    assert faults and all(f["count"] > 0 and f["service"] == "stripe" for f in faults)

    report = await console.get(f"/api/runs/{run_id}/report.html")
    assert report.status_code == 200
    assert "attachment" in report.headers["content-disposition"]
    html = report.text
    assert verdict["verdict"] in html and "<svg" in html and "stripe:acme" in html
    # One file, offline: nothing is fetched (no script, no stylesheet or image from elsewhere).
    assert not re.search(r"<script|<link|<img|@import|url\(", html)

    # A new backend on the same state dir still has the run and its events (persisted).
    state = console.app_state.backend.settings  # type: ignore[attr-defined]
    from workflows.events import EventStore

    assert EventStore(state.state_dir / "console.sqlite").count(run_id) == len(stored)


@pytest.mark.slow
async def test_a_run_can_be_stopped_from_the_console(console: httpx.AsyncClient) -> None:
    spec = {
        "name": "console-stop",
        "mode": "mild",
        "duration_seconds": 60,
        "services": ["stripe"],
        "tenants": ["acme"],
        "workflows": [{"name": "high_volume_read", "concurrency": 1}],
    }
    started = await console.post(
        "/scenarios/run", json={"spec": spec, "profiles": ["full", "naive"]}
    )
    first, second = started.json()["run_ids"]
    for _ in range(100):  # bounded: until the first run is running
        if (await console.get(f"/runs/{first}")).json()["status"] == "running":
            break
        await asyncio.sleep(0.1)
    stopped = await console.post("/api/runs/stop")
    assert stopped.status_code == 200 and set(stopped.json()["stopped"]) == {first, second}
    for _ in range(100):
        record = (await console.get(f"/runs/{first}")).json()
        if record["status"] == "error":
            break
        await asyncio.sleep(0.1)
    assert record["error"] == "stopped from the console"
    later = (await console.get(f"/runs/{second}")).json()
    assert later["status"] == "error" and "before it started" in later["error"]


@pytest.mark.slow
async def test_the_kill_switch_stops_the_run_then_turns_chaos_off(
    console: httpx.AsyncClient, farm_url: tuple[str, str]
) -> None:
    spec = {
        "name": "console-kill",
        "mode": "hell",
        "duration_seconds": 60,
        "services": ["stripe"],
        "tenants": ["acme"],
        "workflows": [{"name": "high_volume_read", "concurrency": 1}],
    }
    url, admin = farm_url
    farm = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {admin}"})
    run_id = (await console.post("/scenarios/run", json={"spec": spec})).json()["run_id"]
    for _ in range(200):  # bounded: until the run holds the farm (it leases it at start)
        if (await farm.get("/admin/lease")).json().get("lease"):
            break
        await asyncio.sleep(0.05)
    # The run holds the farm: its chaos is not changed under it.
    refused = await console.post("/api/chaos", json={"level": "off"})
    assert refused.status_code == 409 and "stop that run" in refused.json()["detail"]
    kill = await console.post("/api/chaos/kill")
    assert kill.status_code == 200, kill.text
    assert kill.json()["stopped"] == [run_id] and kill.json()["level"] == "off"
    record = (await console.get(f"/runs/{run_id}")).json()
    assert record["status"] == "error" and record["error"] == "stopped by the kill switch"
    status = await farm.get("/admin/status")
    await farm.aclose()
    assert status.json()["chaos"]["level"] == "off"
    assert (await console.get("/api/services")).status_code == 200


def test_topology_bands_follow_the_shared_thresholds() -> None:
    members = {"svc": ["a", "b", "c", "d"], "conn": [], "wf": [], "edges": []}
    counters = {"svc:a": (100.0, 1.0), "svc:b": (100.0, 10.0), "svc:c": (100.0, 50.0)}
    old = {"svc:a": (0.0, 0.0), "svc:b": (0.0, 0.0), "svc:c": (0.0, 0.0)}
    nodes = {n["id"]: n for n in topology(members, counters, old, 10.0)["nodes"]}
    assert [nodes[f"svc:{x}"]["state"] for x in "abcd"] == [
        "healthy",
        "degraded",
        "failing",
        "idle",
    ]
    assert nodes["svc:b"]["ratio"] == 0.1 and nodes["svc:b"]["rate"] == 10.0
    # A counter that went down (the farm was reset) counts from zero.
    reset = topology(members, {"svc:a": (5.0, 5.0)}, {"svc:a": (100.0, 1.0)}, 1.0)
    assert reset["nodes"][0]["state"] == "failing"


def test_the_topology_window_keeps_only_recent_samples() -> None:
    window = TopologyWindow(window=10)
    for t in range(30):
        oldest_t, _ = window.add(float(t), {"svc:a": (float(t), 0.0)})
    assert oldest_t == 19.0 and len(window.samples) == 11


def test_the_page_uses_the_same_bands_as_grafana() -> None:
    source = (REPO / "ui" / "src" / "lib" / "health.ts").read_text(encoding="utf-8")
    amber = re.search(r"AMBER_ERROR_RATIO = ([0-9.]+);", source)
    red = re.search(r"RED_ERROR_RATIO = ([0-9.]+);", source)
    assert amber and float(amber.group(1)) == AMBER_ERROR_RATIO
    assert red and float(red.group(1)) == RED_ERROR_RATIO
    for band in BANDS:
        assert f"{band.state}: '{band.color}'" in source, band


def test_the_fault_ledger_says_what_when_and_to_whom() -> None:
    def tick(t: float, faults: dict[str, Any]) -> dict[str, Any]:
        return {"t": t, "kind": "tick", "data": {"faults": faults}}

    events = [
        tick(1.0, {"stripe": {"acme": {"network": 2}}}),
        tick(2.0, {"stripe": {"acme": {"network": 2, "timeout": 1}}}),
        tick(3.0, {"stripe": {"acme": {"network": 5, "timeout": 1}}}),
        tick(4.0, {"stripe": {"acme": {"network": 1, "timeout": 1}}}),  # farm reset
    ]
    assert fault_ledger(events) == [
        {"t": 1.0, "service": "stripe", "tenant": "acme", "kind": "network", "count": 2},
        {"t": 3.0, "service": "stripe", "tenant": "acme", "kind": "network", "count": 3},
        {"t": 4.0, "service": "stripe", "tenant": "acme", "kind": "network", "count": 1},
    ]


def test_fault_counters_are_read_from_the_farm_exposition() -> None:
    text = (
        "# HELP gauntlet_farm_faults_injected_total Faults injected, by kind.\n"
        "# TYPE gauntlet_farm_faults_injected_total counter\n"
        'gauntlet_farm_faults_injected_total{service="s",tenant="t",kind="network"} 3.0\n'
        'gauntlet_farm_faults_injected_total{service="s",tenant="t",kind="timeout"} 0.0\n'
        'gauntlet_farm_requests_total{service="s",tenant="t",code="200"} 9.0\n'
    )
    assert parse_faults(text) == {"s": {"t": {"network": 3}}}


def test_the_report_is_one_offline_file_even_without_samples() -> None:
    run = {"id": "r1", "scenario": "x", "mode": "storm", "profile": "full", "status": "error"}
    html = render_report({**run, "error": "boom <b>"}, [])
    assert "boom &lt;b&gt;" in html and "No samples stored" in html
    assert not re.search(r"<script|<link|<img|@import|url\(", html)
