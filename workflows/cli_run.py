"""The runner commands: ``run``, ``dlq``, ``runs``, ``backend`` and ``demo``.

Registered on the main ``gauntlet`` app by :mod:`workflows.cli`. Exit codes: 0 PASSED (or, with
``--compare``, every profile came out as expected: ``full`` PASSED, every other profile FAILED),
1 FAILED / unexpected, 2 usage or config error (unreachable farm included).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape

from farm.loader import DEFAULT_CONFIG_DIR
from workflows.cli_app import app
from workflows.console import make_console
from workflows.history import RunHistory
from workflows.runner import (
    EXTERNAL_PROFILE,
    RunOptions,
    RunProgress,
    ScenarioError,
    load_scenario,
    new_run_id,
    profiles_from,
    run_scenario,
    with_overrides,
)
from workflows.scorecard import Scorecard, expected_verdict, termination_summary

out = make_console()
err = make_console(stderr=True)
dlq_app = typer.Typer(help="The AAM dead-letter queue of a run.", no_args_is_help=True)
runs_app = typer.Typer(help="Scenario run history.", no_args_is_help=True)
backend_app = typer.Typer(help="The AAM backend API.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.add_typer(runs_app, name="runs")
app.add_typer(backend_app, name="backend")

DEFAULT_FARM_URL = "http://127.0.0.1:8001"
DEFAULT_STATE_DIR = Path("var")
EMBEDDED_ADMIN_TOKEN_FILE = Path("var/farm/admin-token")
WAIT_FOR_FARM_SECONDS = 3600.0


def fail_usage(message: str) -> typer.Exit:
    """Print a usage/config error and return the exit-2 exception to raise (one ``error`` line
    per problem when there are several)."""
    for line in message.splitlines() or [message]:
        err.print(f"[red]error[/red] {escape(line)}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def farm_urls(farm_url: str | None, service_urls: list[str] | None) -> dict[str, str]:
    """Resolve --service-url / GAUNTLET_SERVICE_URLS / --farm-url into service -> URL."""
    urls: dict[str, str] = {}
    env = os.environ.get("GAUNTLET_SERVICE_URLS")
    if env and not service_urls:
        try:
            parsed = json.loads(env)
        except json.JSONDecodeError as exc:
            raise fail_usage(f"GAUNTLET_SERVICE_URLS: not JSON ({exc})") from None
        if not isinstance(parsed, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
        ):
            raise fail_usage('GAUNTLET_SERVICE_URLS: expected {"service": "http://..."}')
        urls.update(parsed)
    for item in service_urls or []:
        service, sep, url = item.partition("=")
        if not sep or not service or not url.startswith(("http://", "https://")):
            raise fail_usage(f"--service-url {item!r}: expected SERVICE=http://host:port")
        urls[service] = url
    if farm_url or not urls:
        urls["*"] = farm_url or os.environ.get("GAUNTLET_FARM_URL", DEFAULT_FARM_URL)
        if not urls["*"].startswith(("http://", "https://")):
            where = "--farm-url" if farm_url else "GAUNTLET_FARM_URL"
            raise fail_usage(f"{where} {urls['*']!r}: expected http://host:port")
    return urls


def admin_token(token_file: Path | None) -> str | None:
    """--admin-token-file, else GAUNTLET_ADMIN_TOKEN, else the embedded farm's token file."""
    path = token_file
    if path is None:
        env = os.environ.get("GAUNTLET_ADMIN_TOKEN")
        if env:
            return env.strip()
        path = EMBEDDED_ADMIN_TOKEN_FILE if EMBEDDED_ADMIN_TOKEN_FILE.exists() else None
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise fail_usage(f"--admin-token-file {path}: {exc.strerror}") from None


class LiveDisplay:
    """Rich live table on a terminal; a plain line every few seconds otherwise (CI logs)."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.console = console
        self.enabled = enabled
        self.live: Live | None = None
        self._last_line = -10.0

    def __enter__(self) -> LiveDisplay:
        if self.enabled and self.console.is_terminal:
            self.live = Live(console=self.console, refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def update(self, progress: RunProgress) -> None:
        from workflows.report import compact_errors, progress_table

        if self.live is not None:
            self.live.update(progress_table(progress))
        elif self.enabled and progress.elapsed - self._last_line >= 5:
            self._last_line = progress.elapsed
            calls = sum(s.get("calls", 0) for s in progress.connectors.values())
            self.console.print(
                f"[{progress.profile}] {progress.phase} {progress.elapsed:.0f}s: "
                f"{calls} calls, writes {progress.writes_issued}, "
                f"errors reaching workflows: {compact_errors(progress.surfaced)}",
                highlight=False,
            )


async def run_profiles(
    scenario_path: Path,
    profiles: list[str | None],
    options: RunOptions,
    *,
    mode: str | None,
    seed: int | None,
    duration: float | None,
    live: bool,
    console: Console,
) -> list[Scorecard]:
    """Run the scenario once per profile (sequentially: each run resets the farm)."""
    from workflows.report import scorecard_tables

    base = load_scenario(scenario_path)
    history = RunHistory(options.state_dir / "history.sqlite")
    for stale in history.mark_interrupted():
        console.print(
            f"run {stale} was left running by a process that is gone: marked interrupted "
            f"(`gauntlet dlq replay --run {stale}` recovers its writes)",
            style="yellow",
        )
    cards: list[Scorecard] = []
    for profile in profiles:
        spec = with_overrides(base, mode=mode, profile=profile, seed=seed, duration=duration)
        run_id = new_run_id()
        label = EXTERNAL_PROFILE if options.aam_url or spec.aam else spec.profile.label
        history.start(run_id, spec.name, spec.mode.value, label, spec.seed)
        display = LiveDisplay(console, live)
        try:
            with display:
                card = await run_scenario(spec, options, run_id=run_id, on_progress=display.update)
        except BaseException as exc:
            interrupted = isinstance(exc, KeyboardInterrupt | asyncio.CancelledError)
            history.fail(run_id, "interrupted" if interrupted else f"{type(exc).__name__}: {exc}")
            if interrupted:
                console.print(f"run {run_id} interrupted; the farm is back to calm", style="yellow")
            raise
        history.finish(card)
        run_dir = options.state_dir / "runs" / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "scorecard.json").write_text(card.to_json(), encoding="utf-8")
        console.print(scorecard_tables(card))
        cards.append(card)
    return cards


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.", show_default=False)],
    mode: Annotated[
        str | None, typer.Option(help="Override the mode: calm|mild|storm|hell.")
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="AAM profile: full, naive or full-<defence>.")
    ] = None,
    compare: Annotated[
        str | None, typer.Option(help="Run each of these profiles, e.g. naive,full.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Override the seed.", min=0)] = None,
    duration: Annotated[
        float | None, typer.Option(help="Override the duration in seconds.", min=0.1)
    ] = None,
    farm_url: Annotated[str | None, typer.Option(help="One farm serving every service.")] = None,
    service_url: Annotated[
        list[str] | None, typer.Option(help="SERVICE=URL, repeatable (one farm per service).")
    ] = None,
    admin_token_file: Annotated[
        Path | None, typer.Option(help="File holding the farm admin token.")
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the scorecard(s) as JSON here.")
    ] = None,
    termination_log: Annotated[
        Path | None, typer.Option(help="Write a ≤4 KiB JSON summary here (Kubernetes Job).")
    ] = None,
    state_dir: Annotated[Path, typer.Option(help="Run history and AAM state.")] = (
        DEFAULT_STATE_DIR
    ),
    configs: Annotated[
        Path, typer.Option(help="Folder of service spec YAML files.")
    ] = DEFAULT_CONFIG_DIR,
    live: Annotated[bool, typer.Option(help="Show live progress.")] = True,
    aam_url: Annotated[
        str | None,
        typer.Option(
            help="Test the AAM served at this URL (the HTTP contract, aam/README.md) instead of "
            "the reference AAM in-process.",
            envvar="GAUNTLET_AAM_URL",
        ),
    ] = None,
    aam_token: Annotated[
        str | None,
        typer.Option(
            help="Bearer token for --aam-url (default: $GAUNTLET_AAM_TOKEN).",
            envvar="GAUNTLET_AAM_TOKEN",
            show_envvar=False,
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="If another run holds the farm, wait for it (up to an hour)."),
    ] = False,
) -> None:
    """Run a scenario against the farm and print the scorecard; exit 0 PASSED, 1 FAILED, 2 ERROR
    (usage or config error, a busy farm, or a farm or AAM that cannot vouch for the run)."""
    from aam.profile import AamProfile

    if compare is not None and profile is not None:
        raise fail_usage("give --profile or --compare, not both")
    if aam_url is not None and (compare is not None or profile is not None):
        raise fail_usage(
            "--aam-url tests the AAM at that URL as it is: --profile and --compare apply to "
            "the reference AAM only"
        )
    if aam_url is not None and not aam_url.startswith(("http://", "https://")):
        raise fail_usage(f"--aam-url {aam_url!r}: expected http://host:port")
    if json_path is not None:  # checked now, not after a minute of running
        check_writable("--json", json_path)
    check_state_dir(state_dir)
    try:
        profiles: list[str | None] = list(profiles_from(compare)) if compare else [profile]
        if profile is not None and compare is None:
            AamProfile.parse(profile)
    except (ScenarioError, ValueError) as exc:
        raise fail_usage(str(exc)) from None
    options = RunOptions(
        farm_urls=farm_urls(farm_url, service_url),
        admin_token=admin_token(admin_token_file),
        state_dir=state_dir,
        configs=[configs],
        aam_url=aam_url,
        aam_token=(aam_token or "").strip() or None,
        wait_for_farm=WAIT_FOR_FARM_SECONDS if wait else 0.0,
    )
    try:
        cards = asyncio.run(
            run_profiles(
                scenario,
                profiles,
                options,
                mode=mode,
                seed=seed,
                duration=duration,
                live=live,
                console=out,
            )
        )
    except ScenarioError as exc:
        raise fail_usage(str(exc)) from None
    except (OSError, sqlite3.Error) as exc:  # the state dir failed during the run (disk full)
        reason = getattr(exc, "strerror", None) or str(exc)
        raise fail_usage(f"--state-dir {state_dir}: cannot write ({reason})") from None
    finally:
        from workflows.metrics import push_if_configured

        push_if_configured()
    exit_code = write_outputs(cards, json_path, termination_log, comparing=compare is not None)
    raise typer.Exit(exit_code)


def check_state_dir(state_dir: Path) -> None:
    """Exit 2 with one sentence unless ``state_dir`` takes writes (read-only or full disk)."""
    from farm.store import StateDirError, private_dir

    try:
        private_dir(state_dir, private=False)
    except StateDirError as exc:
        raise fail_usage(f"--state-dir: {exc}") from None


def check_writable(option: str, path: Path) -> None:
    """Fail with a usage error unless ``path`` can be written (its folder is created)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail_usage(f"{option} {path}: cannot create {path.parent}: {exc.strerror}") from None
    if path.is_dir() or not os.access(path.parent, os.W_OK):
        raise fail_usage(f"{option} {path}: not a writable file path")


def write_outputs(
    cards: list[Scorecard], json_path: Path | None, termination_log: Path | None, *, comparing: bool
) -> int:
    """Write --json / --termination-log, print the comparison, and return the exit code
    (2 when --json could not be written)."""
    json_failed = False
    if json_path is not None:
        data: Any = [json.loads(c.to_json()) for c in cards] if comparing else None
        try:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(
                json.dumps(data, indent=2) if comparing else cards[0].to_json(), encoding="utf-8"
            )
        except OSError as exc:
            err.print(f"[red]error[/red] --json {json_path}: {exc.strerror}", highlight=False)
            json_failed = True
    if termination_log is not None:
        chosen = next((c for c in cards if c.profile == "full"), cards[-1])
        try:
            termination_log.write_text(termination_summary(chosen), encoding="utf-8")
        except OSError as exc:
            err.print(f"could not write the termination log {termination_log}: {exc.strerror}")
    code = verdict_code(cards, comparing=comparing)
    return 2 if json_failed else code


def verdict_code(cards: list[Scorecard], *, comparing: bool) -> int:
    """Exit code from the verdicts; with --compare print the comparison first."""
    from workflows.report import comparison

    if not comparing:
        return 0 if cards[0].passed else 1
    out.print(comparison(cards))
    unexpected = [c for c in cards if c.verdict != expected_verdict(c.profile)]
    for card in unexpected:
        out.print(
            f"[red]unexpected:[/red] {card.profile} {card.verdict} "
            f"(expected {expected_verdict(card.profile)})"
        )
    if not unexpected:
        out.print("[green]as expected:[/green] only the full AAM passed.")
    return 1 if unexpected else 0


# --- runs ---------------------------------------------------------------------------------------


@runs_app.command("list")
def runs_list(
    state_dir: Annotated[Path, typer.Option(help="Run history folder.")] = DEFAULT_STATE_DIR,
    limit: Annotated[int, typer.Option(help="How many runs to list.", min=1, max=1000)] = 20,
) -> None:
    """List recent runs, newest first."""
    from rich.table import Table

    history = _history(state_dir)
    rows = history.list(limit) if history is not None else []
    if not rows:
        out.print(f"no runs in {state_dir} yet (gauntlet run SCENARIO.yaml records one)")
        return
    table = Table()
    for col in ("id", "scenario", "mode", "profile", "seed", "status", "verdict", "started"):
        table.add_column(col, no_wrap=col == "id")
    for r in rows:
        table.add_row(
            r["id"],
            r["scenario"],
            r["mode"],
            r["profile"],
            str(r["seed"]),
            r["status"],
            r["verdict"] or "-",
            r["started_at"],
        )
    out.print(table)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="Run id (see `gauntlet runs list`).")],
    state_dir: Annotated[Path, typer.Option(help="Run history folder.")] = DEFAULT_STATE_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw scorecard JSON.")] = False,
) -> None:
    """Show one run's scorecard."""
    from workflows.report import scorecard_tables

    history = _history(state_dir)
    row = history.get(run_id) if history is not None else None
    if row is None:
        raise fail_usage(f"no run {run_id!r} in {state_dir / 'history.sqlite'}")
    if row["scorecard"] is None:
        out.print(f"run {run_id}: {row['status']} {row.get('error') or ''}")
        raise typer.Exit(1)
    if as_json:
        print(json.dumps(row["scorecard"], indent=2))
        return
    data = dict(row["scorecard"])
    data.pop("totals", None)
    out.print(scorecard_tables(Scorecard.model_validate(data)))


# --- dlq ----------------------------------------------------------------------------------------


def _history(state_dir: Path) -> RunHistory | None:
    """The run history under ``state_dir``, or None when there is none (reading commands must
    not create state folders or databases)."""
    path = state_dir / "history.sqlite"
    if not path.is_file():
        return None
    history = RunHistory(path)
    history.mark_interrupted()
    return history


def _run_dir(state_dir: Path, run_id: str | None) -> tuple[str, Path]:
    history = _history(state_dir)
    chosen = run_id or (history.latest_id() if history is not None else None)
    if chosen is None:
        raise fail_usage(f"no runs in {state_dir}")
    path = state_dir / "runs" / chosen / "aam"
    if not path.exists():
        raise fail_usage(f"run {chosen}: no AAM state at {path}")
    return chosen, path


@dlq_app.command("list")
def dlq_list(
    run_id: Annotated[str | None, typer.Option("--run", help="Run id (default: latest).")] = None,
    state_dir: Annotated[Path, typer.Option(help="Run history folder.")] = DEFAULT_STATE_DIR,
) -> None:
    """List the DLQ entries of a run."""
    from rich.table import Table

    from workflows.dlq_ops import list_entries

    chosen, path = _run_dir(state_dir, run_id)
    entries = asyncio.run(list_entries(path))
    if not entries:
        out.print(f"DLQ of run {chosen}: empty")
        return
    table = Table(title=f"DLQ of run {chosen}", title_justify="left")
    for col in ("id", "connector", "path", "error", "attempts", "status", "replays"):
        table.add_column(col)
    for e in entries:
        table.add_row(
            str(e["id"]),
            e["connector_id"],
            e["path"],
            e["error_class"],
            str(e["attempts"]),
            e["status"],
            str(e["replay_count"]),
        )
    out.print(table)


@dlq_app.command("replay")
def dlq_replay(
    run_id: Annotated[str | None, typer.Option("--run", help="Run id (default: latest).")] = None,
    state_dir: Annotated[Path, typer.Option(help="Run history folder.")] = DEFAULT_STATE_DIR,
    farm_url: Annotated[str | None, typer.Option(help="One farm serving every service.")] = None,
    service_url: Annotated[list[str] | None, typer.Option(help="SERVICE=URL, repeatable.")] = None,
    admin_token_file: Annotated[Path | None, typer.Option(help="Farm admin token file.")] = None,
    configs: Annotated[Path, typer.Option(help="Service spec folder.")] = DEFAULT_CONFIG_DIR,
    wait: Annotated[
        bool, typer.Option("--wait", help="If a run holds the farm, wait for it (up to an hour).")
    ] = False,
) -> None:
    """Replay a run's waiting DLQ entries once (same idempotency keys), after parking the
    writes a crashed run left in flight."""
    from workflows.dlq_ops import replay_entries
    from workflows.farm_client import FarmError

    chosen, path = _run_dir(state_dir, run_id)
    try:
        report = asyncio.run(
            replay_entries(
                path,
                farm_urls(farm_url, service_url),
                admin_token(admin_token_file),
                [configs],
                wait_seconds=WAIT_FOR_FARM_SECONDS if wait else 0.0,
            )
        )
    except (FarmError, ScenarioError) as exc:
        raise fail_usage(str(exc)) from None
    out.print_json(data=report)
    if not any(report.get(k) for k in ("replayed", "failed", "skipped")):
        from collections import Counter

        from workflows.dlq_ops import list_entries

        counts = Counter(e["status"] for e in asyncio.run(list_entries(path)))
        held = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "empty"
        err.print(
            f"nothing waiting in the DLQ of run {chosen} ({held}); "
            "only pending entries are replayed",
            highlight=False,
            soft_wrap=True,
        )
    raise typer.Exit(0 if not report.get("failed") else 1)


# --- backend and demo ---------------------------------------------------------------------------


@backend_app.command("serve")
def backend_serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.", min=0, max=65535)] = 8002,
    farm_url: Annotated[str | None, typer.Option(help="The farm serving every service.")] = None,
    admin_token_file: Annotated[Path | None, typer.Option(help="Farm admin token file.")] = None,
    state_dir: Annotated[Path, typer.Option(help="Run history and AAM state.")] = (
        DEFAULT_STATE_DIR
    ),
    scenarios: Annotated[Path, typer.Option(help="Folder of scenario YAML files.")] = Path(
        __file__
    ).parent
    / "scenarios",
    configs: Annotated[
        Path, typer.Option(help="Folder of service spec YAML files.")
    ] = DEFAULT_CONFIG_DIR,
) -> None:
    """Serve the AAM backend API (connectors, workflows, scenario runs, DLQ, metrics)."""
    from workflows.backend import BackendSettings, serve

    check_state_dir(state_dir)
    settings = BackendSettings(
        farm_urls=farm_urls(farm_url, None),
        admin_token=admin_token(admin_token_file),
        state_dir=state_dir,
        scenarios_dir=scenarios,
        configs=[configs],
    )
    serve(settings, host=host, port=port)


@app.command()
def demo(
    duration: Annotated[float, typer.Option(help="Seconds per profile.", min=1)] = 60,
    scenario: Annotated[Path, typer.Option(help="Scenario to run.")] = Path(__file__).parent
    / "scenarios"
    / "storm.yaml",
    farm_port: Annotated[
        int, typer.Option(help="Port for the farm (127.0.0.1).", min=1, max=65535)
    ] = 8001,
    backend_port: Annotated[
        int, typer.Option(help="Port for the AAM backend (127.0.0.1).", min=1, max=65535)
    ] = 8002,
    state_dir: Annotated[Path, typer.Option(help="Where the demo keeps its state.")] = Path(
        "var/demo"
    ),
    stay: Annotated[
        bool | None,
        typer.Option(
            help="Keep the farm, backend and web console up after the comparison until Ctrl-C "
            "(default: when stdin is a terminal)."
        ),
    ] = None,
) -> None:
    """Start the farm, the AAM backend and its web console; compare naive vs full under a storm."""
    from workflows.demo import run_demo

    code = run_demo(
        scenario=scenario,
        duration=duration,
        farm_port=farm_port,
        backend_port=backend_port,
        state_dir=state_dir,
        console=out,
        stay=sys.stdin.isatty() if stay is None else stay,
    )
    sys.stdout.flush()
    raise typer.Exit(code)
