"""Fixtures for the farm tests: a farm served on a loopback socket and a client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from farm_helpers import make_spec

from farm.server import RunningFarm, running_farm
from farm.spec import ServiceSpec


@pytest.fixture
def spec_factory() -> Callable[..., ServiceSpec]:
    return make_spec


@pytest.fixture
async def farm() -> AsyncIterator[RunningFarm]:
    """The base spec plus an API-key twin, served on 127.0.0.1 (ephemeral port)."""
    specs = [
        make_spec(),
        make_spec(id="keyed", base_path="/keyed", auth={"type": "api_key"}),
    ]
    async with running_farm(specs, seed=7, admin_token="admin-secret-for-tests") as running:
        yield running


@pytest.fixture
async def client(farm: RunningFarm) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=farm.url, timeout=10) as c:
        yield c
