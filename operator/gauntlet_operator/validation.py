"""Validate custom resource specs with the same pydantic models the farm and the runner use.

The CRD schema rejects what it can express; cross-field rules (drift steps naming existing
fields, unique resource names, ...) only the models know. Problems come back as
``spec.<field path>: <what was expected>`` so a status condition can say exactly what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from farm.loader import problems_from_validation
from gauntlet_operator.crds import SyntheticServiceSpec
from workflows.scenario import ScenarioSpec

#: A model-level check names its field at the start of the message (``drift_schedule[0]: ...``).
_LEADING_FIELD = re.compile(
    r"^(?P<field>[a-z_][a-z0-9_]*(\[\d+\])*(\.[a-z_][a-z0-9_]*(\[\d+\])*)*): "
)


def _problems(exc: ValidationError, renames: Mapping[str, str] | None = None) -> list[str]:
    out: list[str] = []
    for problem in problems_from_validation("spec", exc):
        field, message = problem.field, problem.message
        leading = _LEADING_FIELD.match(message) if not field else None
        if leading:
            # "spec.drift_schedule[0]: field 'x' ...", not "spec: drift_schedule[0]: ...".
            field, message = leading["field"], message[leading.end() :]
        head = field.split(".", 1)[0].split("[", 1)[0]
        if renames and head in renames:
            path = renames[head] + field[len(head) :]
        else:
            path = f"spec.{field}" if field else "spec"
        out.append(f"{path}: {message}")
    return out


def validate_service(spec: Mapping[str, Any]) -> tuple[SyntheticServiceSpec | None, list[str]]:
    """Parse a SyntheticService spec; returns the model or the problems (never raises)."""
    try:
        return SyntheticServiceSpec.model_validate(dict(spec)), []
    except ValidationError as exc:
        return None, _problems(exc)


def validate_scenario(name: str, spec: Mapping[str, Any]) -> tuple[ScenarioSpec | None, list[str]]:
    """Parse a GauntletScenario spec; the scenario's ``name`` is its ``metadata.name``."""
    if "name" in spec:
        return None, ["spec.name: not allowed: the scenario's name is metadata.name"]
    try:
        return ScenarioSpec.model_validate({"name": name, **spec}), []
    except ValidationError as exc:
        return None, _problems(exc, {"name": "metadata.name"})


def farm_config(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The farm's YAML document for a SyntheticService: its spec without ``replicas``."""
    return {k: v for k, v in plain(spec).items() if k != "replicas"}


def scenario_document(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The runner's scenario YAML document: ``name`` from metadata, then the spec."""
    return {"name": name, **plain(spec)}


def plain(value: Any) -> Any:
    """Deep copy of a (kopf) mapping/list tree into plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
