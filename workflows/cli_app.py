"""The ``gauntlet`` Typer app itself: every command module registers on this one object.

Kept apart from :mod:`workflows.cli` (which imports every command module so that they register)
so a command module imports the app without importing the module that imports it back.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="gauntlet",
    help="AAM Gauntlet: a synthetic API farm, resilient connectors and chaos scenarios.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
