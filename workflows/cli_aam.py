"""``gauntlet aam serve``: the reference AAM behind the AAM-under-test HTTP contract.

Registered on the main ``gauntlet`` app by :mod:`workflows.cli`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from workflows.cli_app import app
from workflows.console import make_console

aam_app = typer.Typer(
    help="The reference AAM as a server (the HTTP contract).", no_args_is_help=True
)
app.add_typer(aam_app, name="aam")
err = make_console(stderr=True)


@aam_app.command("serve")
def aam_serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.", min=0, max=65535)] = 8003,
    state_dir: Annotated[
        Path, typer.Option(help="SQLite state (keys, DLQ, call log) and the aam-token file.")
    ] = Path("var/aam-server"),
    profile: Annotated[
        str, typer.Option(help="Reference AAM profile: full, naive, sdk-default, full-<defence>.")
    ] = "full",
    mutant: Annotated[
        str | None,
        typer.Option(
            help="Serve a mutant (the reference AAM with one realistic bug, workflows/mutants.py) "
            "instead, to see the judge catch it over HTTP."
        ),
    ] = None,
) -> None:
    """Serve the reference AAM on the contract's endpoints; token from $GAUNTLET_AAM_TOKEN, else
    generated into <state dir>/aam-token (mode 0600)."""
    from aam.profile import AamProfile
    from aam.server import TOKEN_ENV, port_is_free, serve

    try:
        chosen = AamProfile.parse(profile)
    except ValueError as exc:
        err.print(f"[red]error[/red] --profile: {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    if port and not port_is_free(host, port):
        err.print(
            f"[red]error[/red] {escape(host)}:{port} is already in use; stop whatever is "
            "listening there or pick another --port",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    opener = None
    label = chosen.label
    if mutant is not None:
        from workflows.mutants import mutant as find_mutant
        from workflows.mutants import open_mutant

        try:
            find_mutant(mutant)
        except KeyError as exc:
            err.print(f"[red]error[/red] --mutant: {escape(str(exc.args[0]))}", highlight=False)
            raise typer.Exit(2) from None
        label = f"mutant {mutant}"

        def opener() -> Any:
            return open_mutant(mutant, state_dir)

    err.print(
        f"reference AAM ({label}) on http://{escape(host)}:{port}; token from "
        f"${TOKEN_ENV} or {escape(str(state_dir / 'aam-token'))}",
        highlight=False,
        soft_wrap=True,
    )
    serve(host=host, port=port, state_dir=state_dir, profile=chosen, opener=opener)
