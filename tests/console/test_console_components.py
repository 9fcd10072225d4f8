"""The console's component and state tests (Vitest, in ui/src/**/*.test.ts[x]) as part of the
suite. (The TypeScript check of the whole page runs in ``make ui``: ``npm run build`` is
``tsc --noEmit`` then ``vite build``.)"""

from __future__ import annotations

import subprocess

import pytest
from console_helpers import UI, require_console_build


def npm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["npm", "run", "--silent", *args],
        cwd=UI,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_vitest_component_tests_pass() -> None:
    require_console_build()
    done = npm("test")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Tests" in output and "passed" in output and "failed" not in output.lower()
