"""``make help`` as a person (or a pipe) reads it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_help_lists_the_readme_targets_without_colour_codes_in_a_pipe() -> None:
    result = subprocess.run(
        ["make", "-s", "help"], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    assert "\x1b" not in result.stdout
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert {"install", "test", "demo", "farm", "lint", "dashboards", "crds", "bench"} <= listed
