"""``make bench-farm``: farm collection throughput vs a bare Starlette route, plus scale figures.

Both targets run as subprocesses under uvicorn with the same settings (one worker, uvloop,
httptools, no access log) on 127.0.0.1 ephemeral ports, and serve the same 50-record page
serialised with orjson. The farm's request goes through the whole pipeline (auth with a real
bearer token, rate limit set high, fault and drift steps, chaos ``off``) and is served behind
the farm's socket front (``farm.front``), as ``farm serve`` serves it. The load generator is
``wrk`` when installed (``apt-get install wrk``), else a small aiohttp client; each measurement is
bounded in time. Then a farm process loads 1,000 generated specs: start-up time and peak memory.

The targets are measured in alternating rounds (bare, farm without store, farm; again), and a
ratio is the median of the per-round ratios, printed with their range: on a shared machine the
throughput of all three drifts together, so a ratio of two measurements seconds apart is
steadier than a ratio of averages taken over a minute.

    python -m farm.bench [--duration 3] [--rounds 5] [--connections 32] [--specs 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml
from rich.console import Console
from rich.table import Table

from farm.spec import ServiceSpec

PAGE_SIZE = 50
ADMIN_TOKEN = "bench-admin-token-not-a-secret"
TARGET_RATIO = 0.70
FARM_TARGET = "farm (full pipeline, socket front)"
BENCH_SPEC: dict[str, Any] = {
    "id": "bench",
    "base_path": "/bench/v1",
    "auth": {"type": "oauth2_client_credentials", "token_ttl_seconds": 86400},
    "rate_limit": {"max_rps": 100_000, "burst": 100_000},
    "error_profile": {"preset": "none"},
    "resources": [
        {
            "name": "invoices",
            "records": 1000,
            "pagination": {"style": "cursor", "page_size": PAGE_SIZE, "max_page_size": 200},
            "endpoints": [{"method": "GET", "path": "/invoices", "paginated": True}],
        }
    ],
    "schema": {
        "fields": {
            "invoices": {
                "id": "id",
                "customer": "name",
                "email": "email",
                "amount": "amount",
                "currency": "currency",
                "status": "status",
                "due_date": "date",
            }
        }
    },
    # Never fires within a bench, but keeps the drift step's bookkeeping in the path.
    "drift_schedule": [
        {
            "after_calls": 10**12,
            "action": "rename",
            "resource": "invoices",
            "field": "status",
            "to": "state",
        }
    ],
    "tenants": [{"id": "acme"}],
}
PATH = "/bench/v1/invoices"
UVICORN_SETTINGS: dict[str, Any] = {
    "loop": "uvloop",
    "http": "httptools",
    "access_log": False,
    "log_level": "warning",
    "lifespan": "off",
}


# -- the two servers (run in child processes) -----------------------------------------------------


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _run_uvicorn(app: Any, sock: socket.socket, *, front: bool) -> None:
    import uvicorn

    from farm.front import HTTP_PROTOCOL

    print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
    # The farm is served behind its socket front (uvicorn's httptools protocol plus the transport
    # in the scope, for connection resets); the bare route by plain httptools.
    settings = {**UVICORN_SETTINGS, "http": HTTP_PROTOCOL} if front else UVICORN_SETTINGS
    uvicorn.Server(uvicorn.Config(app, **settings)).run(sockets=[sock])


def _farm_app(durable: bool = True) -> Any:
    from farm.app import create_app
    from farm.chaos import ChaosLevel

    app = create_app([ServiceSpec.model_validate(BENCH_SPEC)], admin_token=ADMIN_TOKEN)
    app.farm.set_chaos(ChaosLevel.off)
    if not durable:
        # The baseline the durable ground truth is measured against: the same farm with the
        # attempt log and the store's queue switched off (as before they existed).
        app.farm.attempts.record = lambda *args, **kwargs: None
        app.farm.store.put = lambda *args, **kwargs: None
    return app


def _bare_app() -> Any:
    """A bare Starlette route serving the same page the farm serves, serialised the same way."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from farm.pagination import encode_cursor
    from farm.records import RecordStore

    spec = ServiceSpec.model_validate(BENCH_SPEC)
    table = RecordStore({spec.id: spec}, seed=42).table(spec.id, "acme", "invoices")
    records = table.slice(0, PAGE_SIZE)
    next_link = f"{PATH}?limit={PAGE_SIZE}&cursor={encode_cursor(PAGE_SIZE)}"

    async def invoices(_: Request) -> Response:
        return Response(orjson.dumps({"data": records, "next": next_link}), 200, None,
                        "application/json")  # fmt: skip

    return Starlette(routes=[Route(PATH, invoices)])


def _serve_child(role: str) -> None:
    sock = _bound_socket()
    if role == "bare":
        _run_uvicorn(_bare_app(), sock, front=False)
    else:
        _run_uvicorn(_farm_app(durable=role == "farm"), sock, front=True)


# -- scale: a farm with 1,000 generated specs (child process) -------------------------------------


def generated_spec(i: int) -> dict[str, Any]:
    """A varied but valid spec: two resources, two tenants, OAuth2 or API key, one drift step."""
    auth = (
        {"type": "api_key"} if i % 2 else
        {"type": "oauth2_client_credentials", "token_ttl_seconds": 600}
    )  # fmt: skip
    return {
        "id": f"svc-{i:04d}",
        "base_path": f"/svc{i:04d}/v1",
        "auth": auth,
        "rate_limit": {"max_rps": 50, "burst": 20},
        "error_profile": {"preset": ["mostly_ok", "flaky_5xx", "spiky_rate_limit"][i % 3]},
        "network_profile": {"dns_flakiness": 0.01, "timeout_probability": 0.005},
        "idempotency": {"supported": i % 3 == 0},
        "resources": [
            {
                "name": "customers",
                "records": 500,
                "endpoints": [
                    {"method": "GET", "path": "/customers", "paginated": True},
                    {"method": "GET", "path": "/customers/{id}"},
                ],
            },
            {
                "name": "invoices",
                "records": 2000,
                "lookup_field": "external_id",
                "endpoints": [
                    {"method": "GET", "path": "/invoices", "paginated": True},
                    {"method": "POST", "path": "/invoices"},
                ],
            },
        ],
        "schema": {
            "fields": {
                "customers": {"id": "id", "name": "name", "email": "email", "company": "company"},
                "invoices": {
                    "id": "id",
                    "customer_id": "ref:customers",
                    "amount": "amount",
                    "due_date": "date",
                    "external_id": "string",
                },
            }
        },
        "drift_schedule": [
            {
                "after_calls": 100,
                "action": "rename",
                "resource": "customers",
                "field": "email",
                "to": "email_address",
            }
        ],
        "tenants": [{"id": "acme"}, {"id": "globex"}],
    }


def _scale_child(count: int) -> None:
    """Write ``count`` YAML specs, then time load + app + server start; print JSON figures."""
    import uvicorn

    from farm.app import create_app
    from farm.loader import load_specs

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i in range(count):
            (folder / f"svc-{i:04d}.yaml").write_text(yaml.safe_dump(generated_spec(i)))
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        specs = load_specs([folder])
        t1 = time.perf_counter()
        app = create_app(specs, admin_token=ADMIN_TOKEN, state_dir=folder / "state")
        t2 = time.perf_counter()

        async def start_and_probe() -> dict[str, float]:
            sock = _bound_socket()
            from farm.front import HTTP_PROTOCOL

            settings = {**UVICORN_SETTINGS, "http": HTTP_PROTOCOL}
            server = uvicorn.Server(uvicorn.Config(app, **settings))
            server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
            task = asyncio.create_task(server.serve(sockets=[sock]))
            for _ in range(60_000):  # bounded: at most a minute
                if server.started or task.done():
                    break
                await asyncio.sleep(0.001)
            ready = time.perf_counter()
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            ok = probes = 0
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                creds = app.farm.credentials.as_json()["services"]
                for i in range(1, count, max(1, count // 50)):  # ~50 API-key services, page 1
                    key = creds[f"svc-{i:04d}"]["acme"]["api_key"]
                    probes += 1
                    try:  # the generated profiles inject a few faults even in calm weather
                        r = await client.get(f"/svc{i:04d}/v1/invoices", headers={"X-API-Key": key})
                    except httpx.TransportError:
                        continue
                    ok += r.status_code == 200
                metrics = await client.get("/metrics")
            server.should_exit = True
            await task
            return {
                "ready": ready,
                "probes_ok": ok,
                "probes": probes,
                "metrics_bytes": len(metrics.content),
            }

        probe = asyncio.run(start_and_probe())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "specs": len(specs), "load_s": t1 - t0, "app_s": t2 - t1, "ready_s": probe["ready"] - t0,
        "peak_rss_mb": peak / 1024, "rss_before_load_mb": rss_before / 1024,
        "probes_ok": probe["probes_ok"], "probes": probe["probes"],
        "metrics_bytes": probe["metrics_bytes"],
    }), flush=True)  # fmt: skip


# -- the parent: start servers, load them, print the table ----------------------------------------


class Child:
    """A server subprocess that prints its port as its first line."""

    def __init__(self, role: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "farm.bench", "--serve", role],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{role} server did not start (exit {self.proc.wait()})")
        self.url = f"http://127.0.0.1:{json.loads(line)['port']}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _wrk(url: str, headers: dict[str, str], seconds: float, connections: int) -> dict[str, Any]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run(
        [*cmd, url], capture_output=True, text=True, timeout=seconds + 30, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency: dict[str, float] = {}
    for pct, value, unit in re.findall(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        latency[pct] = float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {"rps": rps, "p50_ms": latency.get("50"), "p90_ms": latency.get("90"),
            "p99_ms": latency.get("99"), "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(0) if errors else "", "tool": "wrk"}  # fmt: skip


async def _aiohttp_load(
    url: str, headers: dict[str, str], seconds: float, connections: int
) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    non_2xx = 0
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal non_2xx
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            async with session.get(url, headers=headers) as response:
                await response.read()
                non_2xx += response.status >= 300
            latencies.append(time.perf_counter() - t)

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {"rps": len(latencies) / elapsed, "p50_ms": pct(0.5), "p90_ms": pct(0.9),
            "p99_ms": pct(0.99), "non_2xx": non_2xx, "socket_errors": "",
            "tool": "aiohttp"}  # fmt: skip


def load(url: str, headers: dict[str, str], seconds: float, connections: int) -> dict[str, Any]:
    """Drive ``url`` for ``seconds``; requests per second and latency percentiles."""
    if shutil.which("wrk"):
        return _wrk(url, headers, seconds, connections)
    return asyncio.run(_aiohttp_load(url, headers, seconds, connections))


def paired_ratio(
    runs: list[dict[str, Any]], baseline: list[dict[str, Any]]
) -> tuple[float, float, float]:
    """(median, lowest, highest) of ``runs[i].rps / baseline[i].rps`` over the rounds."""
    ratios = sorted(r["rps"] / b["rps"] for r, b in zip(runs, baseline, strict=True))
    return statistics.median(ratios), ratios[0], ratios[-1]


def _farm_token(url: str) -> str:
    with httpx.Client(base_url=url, timeout=10) as client:
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        creds = client.get("/admin/credentials", headers=admin).json()["services"]["bench"]["acme"]
        response = client.post("/oauth2/token", data={
            "grant_type": "client_credentials", "client_id": creds["client_id"],
            "client_secret": creds["client_secret"]})  # fmt: skip
        response.raise_for_status()
        token: str = response.json()["access_token"]
        page = client.get(PATH, headers={"Authorization": f"Bearer {token}"})
        if page.status_code != 200 or len(page.json()["data"]) != PAGE_SIZE:
            raise RuntimeError(f"farm bench page is wrong: {page.status_code} {page.text[:200]}")
        return token


def _same_page(farm_url: str, bare_url: str, token: str) -> bool:
    farm = httpx.get(farm_url + PATH, headers={"Authorization": f"Bearer {token}"}).content
    bare = httpx.get(bare_url + PATH).content
    return farm == bare


def _chaos_mix_table() -> Table:
    """Failed-attempt shares per chaos level (15 simulated minutes through the fault step)."""
    from farm.chaos import ChaosLevel
    from farm.chaos_mix import measure

    table = Table(title="Chaos levels: share of attempts that fail (15 simulated min, 2 tenants)")
    kinds = ("server_error", "commit_then_5xx", "refused", "network", "reset_mid_body",
             "timeout", "outage", "slow_body")  # fmt: skip
    for column in ("level", "failed", *kinds):
        table.add_column(column, justify="right" if column != "level" else "left")
    for level in (ChaosLevel.mild, ChaosLevel.storm, ChaosLevel.hell):
        mix = measure(level)
        table.add_row(
            level.value, f"{mix.error_share:.1%}", *(f"{mix.share(k):.1%}" for k in kinds)
        )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per target")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--specs", type=int, default=1000, help="specs for the scale figures")
    parser.add_argument(
        "--serve", choices=["farm", "farm-volatile", "bare"], help=argparse.SUPPRESS
    )
    parser.add_argument("--scale-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve_child(args.serve)
        return 0
    if args.scale_child:
        _scale_child(args.scale_child)
        return 0

    console = Console()
    tool = "wrk" if shutil.which("wrk") else "aiohttp (install wrk for a lighter load generator)"
    console.print(
        f"[bold]bench-farm[/bold]: {PAGE_SIZE}-record page, {args.connections} connections, "
        f"{args.rounds}x{args.duration:g}s per target, load generator: {tool}"
    )
    farm = Child("farm")
    volatile = Child("farm-volatile")
    bare = Child("bare")
    try:
        token = _farm_token(farm.url)
        volatile_token = _farm_token(volatile.url)
        identical = _same_page(farm.url, bare.url, token)
        targets = {
            "bare Starlette route": (bare.url + PATH, {}),
            "farm without attempt log/store": (
                volatile.url + PATH,
                {"Authorization": f"Bearer {volatile_token}"},
            ),
            FARM_TARGET: (farm.url + PATH, {"Authorization": f"Bearer {token}"}),
        }
        for url, headers in targets.values():  # warm-up: caches, connections, JIT-free but warm
            load(url, headers, 1, args.connections)
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, (url, headers) in targets.items():
                results[name].append(load(url, headers, args.duration, args.connections))
    finally:
        farm.stop()
        volatile.stop()
        bare.stop()

    table = Table(title="Throughput on loopback (one uvicorn worker each, same settings)")
    for column in ("target", "req/s", "p50 ms", "p90 ms", "p99 ms", "non-2xx"):
        table.add_column(column, justify="right" if column != "target" else "left")
    summary: dict[str, dict[str, float]] = {}
    for name, runs in results.items():
        mean = {k: sum(r[k] or 0 for r in runs) / len(runs) for k in
                ("rps", "p50_ms", "p90_ms", "p99_ms")}  # fmt: skip
        summary[name] = mean
        table.add_row(
            name, f"{mean['rps']:,.0f}", f"{mean['p50_ms']:.2f}", f"{mean['p90_ms']:.2f}",
            f"{mean['p99_ms']:.2f}", str(sum(r["non_2xx"] for r in runs)),
        )  # fmt: skip
    console.print(table)
    ratio, low, high = paired_ratio(results[FARM_TARGET], results["bare Starlette route"])
    verdict = "[green]meets[/green]" if ratio >= TARGET_RATIO else "[red]misses[/red]"
    console.print(
        f"farm / bare = [bold]{ratio:.0%}[/bold] (median of {len(results[FARM_TARGET])} rounds, "
        f"range {low:.0%} to {high:.0%}; {verdict} the {TARGET_RATIO:.0%} target); "
        f"identical response bodies: {identical}"
    )
    durable, low, high = paired_ratio(
        results[FARM_TARGET], results["farm without attempt log/store"]
    )
    console.print(
        f"durable attempt log + ledger store / without = [bold]{durable:.0%}[/bold] "
        f"(range {low:.0%} to {high:.0%}; same farm, same rounds: the hot path's cost of recording "
        "every attempt)"
    )

    console.print(_chaos_mix_table())

    if args.specs > 0:
        console.print(f"\n[bold]scale[/bold]: one farm process with {args.specs} generated specs")
        out = subprocess.run(
            [sys.executable, "-m", "farm.bench", "--scale-child", str(args.specs)],
            capture_output=True, text=True, timeout=600, check=True,
        )  # fmt: skip
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        scale = Table()
        for column in ("specs", "load YAML s", "build app s", "ready s", "RSS before MB",
                       "peak RSS MB", "probes 200", "/metrics KB"):  # fmt: skip
            scale.add_column(column, justify="right")
        scale.add_row(
            str(figures["specs"]), f"{figures['load_s']:.2f}", f"{figures['app_s']:.2f}",
            f"{figures['ready_s']:.2f}", f"{figures['rss_before_load_mb']:.0f}",
            f"{figures['peak_rss_mb']:.0f}", f"{figures['probes_ok']}/{figures['probes']}",
            f"{figures['metrics_bytes'] / 1024:,.0f}",
        )  # fmt: skip
        console.print(scale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
