"""Fixtures for the operator tests (the emulator and helpers live in operator_testkit)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from operator_testkit import (
    NAMESPACE,
    PASSED,
    RBAC,
    RESOURCES,
    SEEN_CALLS,
    VERBS,
    ClusterEmulator,
    TestApi,
    custom_resource_problems,
    operator_api_calls,
    rbac_grants,
    running_operator,
)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed:
        PASSED.add(report.nodeid)


@pytest.fixture
def kmock_options() -> dict[str, Any]:
    """Make the kmock fixture build a ClusterEmulator."""
    return {"cls": ClusterEmulator}


@pytest.fixture
async def cluster(kmock: ClusterEmulator) -> AsyncIterator[ClusterEmulator]:
    """An emulated cluster with our CRDs' resources declared and one namespace.

    On teardown: every API call the operator made is one its ClusterRole grants, and every
    stored custom resource (status included) is one the CRD schema accepts.
    """
    for key, (kind, namespaced, subresources) in RESOURCES.items():
        kmock.resources[key] = kmock.ResourceInfo(
            kind=kind, namespaced=namespaced, verbs=VERBS, subresources=subresources
        )
    kmock.objects["v1/namespaces", None, NAMESPACE] = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "uid": str(uuid.uuid4()), "resourceVersion": "1"},
    }
    yield kmock
    calls = operator_api_calls(kmock)
    SEEN_CALLS.update(calls)
    ungranted = calls - rbac_grants(RBAC)
    assert not ungranted, f"operator calls not granted by {RBAC.name}: {sorted(ungranted)}"
    assert custom_resource_problems(kmock) == []


@pytest.fixture
def kubeconfig(cluster: ClusterEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kubeconfig pointing at the emulator, exported as $KUBECONFIG."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kmock", "cluster": {"server": str(cluster.url)}}],
                "users": [{"name": "test", "user": {"token": "test-token"}}],
                "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "test"}}],
                "current-context": "kmock",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("GAUNTLET_IMAGE", "aam-gauntlet:test")
    return path


@pytest.fixture
async def operator(kubeconfig: Path) -> AsyncIterator[Any]:
    """The operator, started against the emulated cluster."""
    async with running_operator() as runner:
        yield runner


@pytest.fixture
def api(cluster: ClusterEmulator) -> TestApi:
    return TestApi(str(cluster.url))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """With GAUNTLET_PRINT_RBAC=1, print the union of the operator's API calls (for rbac.yaml)."""
    import os

    if os.environ.get("GAUNTLET_PRINT_RBAC"):
        for call in sorted(SEEN_CALLS, key=str):
            print("operator call:", call)
