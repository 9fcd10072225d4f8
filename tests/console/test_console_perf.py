"""The console under load, measured in Chromium: 40 connectors on 9 services live.

Figures, not thresholds (a shared 2-core machine): SSE bytes per second, the page's main-thread
time per second and its frame intervals, for the idle console and under the storm, with their
ratios. ui/e2e/perf.mjs measures; the figures go to var/console/perf.json and the test output.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from console_helpers import LOGIN_CODE, TOKEN, console_stack, require_console_build, run_node
from test_console_browser import SCREENSHOTS

from farm.loader import DEFAULT_CONFIG_DIR, load_specs
from farm.spec import ServiceSpec

CONNECTORS = 40
#: Seconds measured per phase (idle, then live); ``make bench-console`` measures longer.
SECONDS = int(os.environ.get("GAUNTLET_CONSOLE_PERF_SECONDS", "10"))


def farm_of(connectors: int, folder: Path) -> tuple[Path, int]:
    """The packaged 9 services with tenants added until there are ``connectors`` (service,
    tenant) pairs in all; returns the config folder and the number of services."""
    specs = sorted(load_specs([DEFAULT_CONFIG_DIR]), key=lambda s: s.id)
    tenants = {s.id: [t.id for t in s.tenants] for s in specs}
    extra = 0
    while sum(len(t) for t in tenants.values()) < connectors:
        spec = specs[extra % len(specs)]
        tenants[spec.id].append(f"load{extra:02d}")
        extra += 1
    folder.mkdir(parents=True, exist_ok=True)
    for spec in specs:
        have = {t.id for t in spec.tenants}
        data = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        data["tenants"] += [{"id": t} for t in tenants[spec.id] if t not in have]
        ServiceSpec.model_validate(data)  # still a valid spec
        (folder / f"{spec.id}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return folder, len(specs)


@pytest.mark.slow
async def test_the_console_with_40_connectors_and_9_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_console_build()
    configs, services = farm_of(CONNECTORS, tmp_path / "configs")
    spec = {
        "name": "console-load",
        "mode": "storm",
        "duration_seconds": SECONDS * 4,
        "services": sorted(s.id for s in load_specs([configs])),
        "workflows": [{"name": "high_volume_read", "concurrency": 1}],
    }
    out = tmp_path / "perf"
    async with console_stack(tmp_path, monkeypatch, configs) as stack:
        log = await run_node(
            "perf.mjs",
            {
                "CONSOLE_URL": stack.url,
                "CONSOLE_LOGIN_CODE": LOGIN_CODE,
                "CONSOLE_TOKEN": TOKEN,
                "CONSOLE_OUT": str(out),
                "PERF_CONNECTORS": str(CONNECTORS),
                "PERF_SECONDS": str(SECONDS),
                "PERF_SCENARIO": json.dumps(spec),
            },
            limit_seconds=SECONDS * 2 + 300,
        )
    report = json.loads(next(line for line in log.splitlines() if line.startswith("PERF "))[5:])
    assert report["connectors"] == CONNECTORS and report["services"] == services == 9
    live, idle = report["live"], report["idle"]
    assert live["sse_bytes_per_second"] > idle["sse_bytes_per_second"] > 0
    assert live["frames"] > 0 and idle["frames"] > 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for item in out.iterdir():
        shutil.copy2(item, SCREENSHOTS / item.name)
