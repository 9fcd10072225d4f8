"""Every metric is declared once, as documented, with bounded, secret-free labels."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Any

import pytest
from observability_support import CONTRACTS, ROOT, contract_catalogue, metric_table
from prometheus_client.metrics import MetricWrapperBase

MODULES = {"farm": "farm.metrics", "aam": "aam.metrics", "workflows": "workflows.metrics"}
#: Label names that would carry a secret, or an unbounded value (one per request, record or key).
FORBIDDEN_LABEL = re.compile(
    r"token|secret|password|api_key|credential|request_id|trace|idempotency|record|cursor|^url$|^path$"
)


@dataclass(frozen=True)
class Declared:
    """A metric family as its module declares it."""

    name: str
    type: str
    labels: tuple[str, ...]
    help: str


def _declaration(value: object) -> Declared | None:
    """A client_python metric object, or a family declaration (name, kind, help, labels)."""
    if isinstance(value, MetricWrapperBase):
        suffix = "_total" if value._type == "counter" else ""
        return Declared(
            value._name + suffix,
            value._type or "",
            tuple(value._labelnames),
            value._documentation or "",
        )
    family: Any = value
    fields = ("name", "kind", "help", "labels")
    if all(hasattr(family, f) for f in fields) and isinstance(family.name, str):
        return Declared(family.name, family.kind, tuple(family.labels), family.help)
    return None


def declared(module_name: str) -> dict[str, Declared]:
    """Every metric family a module declares at module level, by name (each exactly once)."""
    module = importlib.import_module(module_name)
    found: dict[str, Declared] = {}
    for value in vars(module).values():
        family = _declaration(value)
        if family is None:
            continue
        assert family.name not in found, f"{family.name} declared twice in {module_name}"
        found[family.name] = family
    return found


@pytest.mark.parametrize("part", sorted(MODULES))
def test_declared_metrics_are_exactly_the_contract_table(part: str) -> None:
    table = metric_table(CONTRACTS[part].read_text())
    metrics = declared(MODULES[part])
    assert set(metrics) == set(table)
    for name, metric in metrics.items():
        assert metric.type == table[name].type, name
        assert metric.labels == table[name].labels, name
        assert metric.help, f"{name} has no help text"


def test_no_metric_is_declared_by_two_parts() -> None:
    seen: dict[str, str] = {}
    for part, module_name in MODULES.items():
        for name in declared(module_name):
            assert name not in seen, f"{name} declared by {seen.get(name)} and {part}"
            seen[name] = part


def test_labels_are_bounded_and_carry_no_secrets() -> None:
    for contract in contract_catalogue().values():
        for label in contract.labels:
            assert not FORBIDDEN_LABEL.search(label), (contract.name, label)


def test_readme_metrics_reference_is_the_union_of_the_contracts() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "\n## Metrics\n" in readme
    section = readme.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    assert metric_table(section) == contract_catalogue()
