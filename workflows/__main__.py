"""``python -m workflows`` runs the ``gauntlet`` command line (same as the console script)."""

from workflows.cli import app

app(prog_name="gauntlet")
