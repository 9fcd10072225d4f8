"""The web console in Chromium (playwright-core, Debian's /usr/bin/chromium) against a real farm
and backend on loopback: ui/e2e/console.e2e.mjs does the clicking; see its header."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from console_helpers import LOGIN_CODE, REPO, console_stack, require_console_build, run_node

#: Where the screenshots go (README's docs/console.png is copied from here).
SCREENSHOTS = REPO / "var" / "console"


@pytest.mark.slow
async def test_the_console_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_console_build()
    out = tmp_path / "shots"
    async with console_stack(tmp_path, monkeypatch) as stack:
        log = await run_node(
            "console.e2e.mjs",
            {
                "CONSOLE_URL": stack.url,
                "CONSOLE_LOGIN_CODE": LOGIN_CODE,
                "CONSOLE_OUT": str(out),
                "CONSOLE_RUN_SECONDS": "15",
            },
            limit_seconds=400,
        )
    assert log.rstrip().endswith("ok")
    for name in ("console.png", "console-storm.png", "report.html", "console-light.png"):
        assert (out / name).stat().st_size > 1000, name
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for shot in out.iterdir():
        shutil.copy2(shot, SCREENSHOTS / shot.name)
