"""The ``gauntlet`` command line.

Exit codes: 0 success (or PASSED), 1 invalid input found (or FAILED), 2 usage or config error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from farm.loader import DEFAULT_CONFIG_DIR, validate_paths
from workflows.cli_app import app
from workflows.console import make_console

farm_app = typer.Typer(help="The Synthetic API Farm.", no_args_is_help=True)
app.add_typer(farm_app, name="farm")

out = make_console()
err = make_console(stderr=True)


@app.command()
def validate(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Service spec YAML files or folders of them.", show_default=False),
    ],
) -> None:
    """Validate service spec files; print every problem with file, field path and expectation."""
    specs, problems = validate_paths(paths)
    for problem in problems:
        err.print(f"[red]error[/red] {escape(str(problem))}", highlight=False, soft_wrap=True)
    if problems:
        files = len({p.file for p in problems})
        err.print(f"{len(problems)} problem(s) in {files} file(s); {len(specs)} valid spec(s).")
        raise typer.Exit(1)
    names = [
        s.id if s.k8s_name == s.id else f"{s.id} (Kubernetes name {s.k8s_name})" for s in specs
    ]
    out.print(f"[green]ok[/green] {len(specs)} valid service spec(s): " + ", ".join(names))


@farm_app.command("serve")
def farm_serve(
    configs: Annotated[
        Path, typer.Option(help="Folder of service spec YAML files.")
    ] = DEFAULT_CONFIG_DIR,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.", min=0, max=65535)] = 8001,
    seed: Annotated[int, typer.Option(help="Seed for records and fault decisions.", min=0)] = 42,
    state_dir: Annotated[
        Path,
        typer.Option(
            help="Admin token, credentials and the durable ledger/attempt log (farm.sqlite3)."
        ),
    ] = Path("var/farm"),
) -> None:
    """Serve every service spec under CONFIGS on one port."""
    from farm.loader import SpecLoadError, load_specs
    from farm.server import port_is_free, serve

    if port and not port_is_free(host, port):
        # Checked before anything is written: a second farm must not replace the admin token
        # file of the one already serving there.
        err.print(
            f"[red]error[/red] {escape(host)}:{port} is already in use (another farm?); "
            "stop whatever is listening there or pick another --port",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    try:
        specs = load_specs([configs])
    except SpecLoadError as exc:
        for problem in exc.problems:
            err.print(f"[red]error[/red] {escape(str(problem))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    from farm.store import StateDirError

    try:
        serve(specs, host=host, port=port, seed=seed, state_dir=state_dir)
    except StateDirError as exc:
        err.print(f"[red]error[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except OSError as exc:  # e.g. credentials.json on a disk that filled up meanwhile
        where = f"state dir {state_dir}: {exc.strerror or exc}"
        err.print(f"[red]error[/red] {escape(where)}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


@app.command()
def crds(
    root: Annotated[Path, typer.Option(help="Repository root to write under.")] = Path("."),
    check: Annotated[
        bool, typer.Option("--check", help="Only report files that differ; exit 1 if any.")
    ] = False,
) -> None:
    """Write crds/*.yaml and deploy/examples/services/ from the pydantic models and farm/configs."""
    from gauntlet_operator.crds import stale_files, write_all

    stale = stale_files(root)
    if check:
        for path in stale:
            err.print(f"[red]stale[/red] {path} (run `make crds`)", highlight=False)
        if not stale:
            out.print("[green]ok[/green] CRDs and examples match the models")
        raise typer.Exit(1 if stale else 0)
    written = write_all(root)
    for path in stale:
        out.print(f"wrote {path}", highlight=False)
    if not stale:
        out.print(f"{len(written)} generated file(s) already up to date", highlight=False)


# The runner commands (run, runs, dlq, backend, demo, aam) register themselves on ``app``.
from workflows import cli_aam, cli_run  # noqa: E402, F401
