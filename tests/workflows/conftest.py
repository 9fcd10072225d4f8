"""Fixtures for the workflows/runner tests: a real farm on 127.0.0.1:0 and a runner on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from wf_helpers import preseeded, write_specs

from farm.server import running_farm
from farm.spec import ServiceSpec
from workflows.mutation_table import fresh_farm
from workflows.runner import run_scenario
from workflows.scenario import ScenarioSpec
from workflows.scorecard import Scorecard

Runner = Callable[..., Any]


@pytest.fixture
def run_on_farm(tmp_path: Path) -> Runner:
    """``await run_on_farm(specs, scenario, profiles=[...])`` -> scorecards, one farm for all."""

    async def run(
        specs: list[ServiceSpec], spec: ScenarioSpec, profiles: list[str] | None = None
    ) -> list[Scorecard]:
        from workflows.runner import with_overrides

        configs = write_specs(specs, tmp_path / "configs")
        cards = []
        async with fresh_farm(
            specs, tmp_path, seed=spec.seed, configs=[configs], progress_interval=0.2
        ) as options:
            for profile in profiles or [spec.profile.label]:
                cards.append(await run_scenario(with_overrides(spec, profile=profile), options))
        return cards

    return run


@pytest.fixture
async def farm_url(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """A farm serving the preseeded stripe and salesforce specs: (url, admin token)."""
    async with running_farm(
        preseeded("stripe", "salesforce"), seed=42, state_dir=tmp_path / "farm"
    ) as farm:
        yield farm.url, farm.admin_token
