"""The consoles the CLI prints with: a fixed width when the output is not a terminal.

Rich falls back to 80 columns for a file or pipe; CI logs and ``make demo > file`` read better at
:data:`FILE_WIDTH`. ``COLUMNS`` in the environment always wins.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from rich.console import Console

#: Width used when writing to a file or pipe (no terminal to ask).
FILE_WIDTH = 120


def console_width(stream: TextIO | None = None) -> int | None:
    """``None`` (let rich ask the terminal or ``COLUMNS``), or :data:`FILE_WIDTH` for a file."""
    stream = stream if stream is not None else sys.stdout
    if os.environ.get("COLUMNS"):
        return None
    try:
        is_tty = stream.isatty()
    except (AttributeError, ValueError):
        is_tty = False
    return None if is_tty else FILE_WIDTH


def make_console(*, stderr: bool = False) -> Console:
    """A console that renders at :data:`FILE_WIDTH` when its stream is not a terminal."""
    return Console(stderr=stderr, width=console_width(sys.stderr if stderr else sys.stdout))
