"""Fixtures for the AAM tests: a real farm on loopback and Meshes under tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aam_helpers import Farm

from aam import AamProfile, Mesh
from farm.spec import ServiceSpec

FarmFactory = Callable[..., Any]


@pytest.fixture
async def farm_factory(tmp_path: Path) -> AsyncIterator[FarmFactory]:
    """``async with farm_factory([spec, ...]) as farm`` runs a real farm on 127.0.0.1:0."""
    from farm.server import running_farm

    @asynccontextmanager
    async def factory(specs: list[ServiceSpec], seed: int = 42) -> AsyncIterator[Farm]:
        async with running_farm(specs, seed=seed, state_dir=tmp_path / "farm") as running:
            farm = Farm(running)
            try:
                yield farm
            finally:
                await farm.admin.aclose()

    yield factory


@pytest.fixture
async def mesh_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Open Meshes under tmp_path; all are closed at teardown."""
    opened: list[Mesh] = []

    async def factory(profile: str = "full", name: str = "aam", **kw: Any) -> Mesh:
        mesh = await Mesh.open(tmp_path / name, AamProfile.parse(profile), seed=7, **kw)
        opened.append(mesh)
        return mesh

    yield factory
    for mesh in opened:
        await mesh.close()
