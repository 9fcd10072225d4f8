"""Test-run wiring for tests/: which tests must share a pytest-xdist worker (here, not in
tests/, so that tests/aam and tests/farm never shadow the packages of the same name).

``make test`` runs two workers with ``--dist loadgroup``: each test goes wherever a worker is
free, except the groups below, whose tests share one module- or session-scoped fixture (a real
kube-apiserver and etcd, a real Prometheus, a fuzzed farm) and would otherwise start it once per
worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).parent / "tests"
#: Folder or file (relative to tests/) → the xdist group of its tests.
SHARED_FIXTURE_GROUPS = {
    "controlplane": "controlplane",
    "observability/test_prometheus_live.py": "prometheus",
    "farm/test_fuzz.py": "farm-fuzz",
    "farm/test_service_openapi.py": "service-openapi",
    "workflows/test_wf_fuzz.py": "backend-fuzz",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        where = Path(str(item.fspath)).resolve()
        for place, group in SHARED_FIXTURE_GROUPS.items():
            if where == TESTS / place or where.is_relative_to(TESTS / place):
                item.add_marker(pytest.mark.xdist_group(group))
                break
