"""Helpers for the workflows/runner tests (specs, scenarios)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from farm.loader import DEFAULT_CONFIG_DIR, load_specs
from farm.spec import ServiceSpec
from workflows.scenario import ScenarioSpec


def preseeded(*ids: str) -> list[ServiceSpec]:
    """The preseeded service specs with these ids."""
    specs = {s.id: s for s in load_specs([DEFAULT_CONFIG_DIR])}
    return [specs[i] for i in ids]


def with_changes(spec: ServiceSpec, **changes: Any) -> ServiceSpec:
    """A copy of ``spec`` with top-level fields replaced (validated again)."""
    data = spec.model_dump(by_alias=True)
    data.update(changes)
    return ServiceSpec.model_validate(data)


def write_specs(specs: list[ServiceSpec], folder: Path) -> Path:
    """Write specs as YAML so the runner loads exactly what the farm serves."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    for spec in specs:
        data = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        (folder / f"{spec.id}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return folder


def scenario(**fields: Any) -> ScenarioSpec:
    """A scenario spec with short defaults for tests."""
    base: dict[str, Any] = {"name": "test", "duration_seconds": 3, "seed": 42}
    base.update(fields)
    return ScenarioSpec.model_validate(base)
