"""Every metric is declared once, as documented, with bounded, secret-free labels."""

from __future__ import annotations

import importlib
import re

import pytest
from observability_support import CONTRACTS, ROOT, contract_catalogue, metric_table
from prometheus_client.metrics import MetricWrapperBase

MODULES = {"farm": "farm.metrics", "aam": "aam.metrics", "workflows": "workflows.metrics"}
#: Label names that would carry a secret, or an unbounded value (one per request, record or key).
FORBIDDEN_LABEL = re.compile(
    r"token|secret|password|api_key|credential|request_id|trace|idempotency|record|cursor|^url$|^path$"
)


def declared(module_name: str) -> dict[str, MetricWrapperBase]:
    module = importlib.import_module(module_name)
    found: dict[str, MetricWrapperBase] = {}
    for value in vars(module).values():
        if isinstance(value, MetricWrapperBase):
            name = value._name + ("_total" if value._type == "counter" else "")
            assert name not in found, f"{name} declared twice in {module_name}"
            found[name] = value
    return found


@pytest.mark.parametrize("part", sorted(MODULES))
def test_declared_metrics_are_exactly_the_contract_table(part: str) -> None:
    table = metric_table(CONTRACTS[part].read_text())
    metrics = declared(MODULES[part])
    assert set(metrics) == set(table)
    for name, metric in metrics.items():
        assert metric._type == table[name].type, name
        assert tuple(metric._labelnames) == table[name].labels, name
        assert metric._documentation, f"{name} has no help text"


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
