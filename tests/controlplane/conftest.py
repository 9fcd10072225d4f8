"""Fixtures for the tests against a real control plane (marker ``controlplane``).

One control plane per session (etcd + kube-apiserver + kube-controller-manager, see
:mod:`cp_cluster`); ``crds/`` and ``deploy/kind`` applied with ``kubectl apply --server-side``;
the operator as ``kopf run`` under the token of its own ServiceAccount (deploy/kind/operator);
a :class:`cp_node.ProcessNode` running the operator's pods as processes. Each test gets its own
namespace.

``GAUNTLET_KEEP_CONTROLPLANE=1`` keeps the files (component logs, audit log, operator log, pod
roots and container logs) for a look afterwards.

Without the binaries the tests skip with one sentence on how to get them, unless
``GAUNTLET_REQUIRE_CONTROLPLANE=1`` (set by .ci/run), which makes that a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cp_cluster import (
    HOW_TO_GET,
    REPO,
    ControlPlane,
    Process,
    free_port,
    log_tail,
    missing_binaries,
    testbin_dir,
)
from cp_node import ProcessNode
from gauntlet_operator import names
from gauntlet_operator.kube import ApiError, KubeApi

OPERATOR_NAMESPACE = "gauntlet"
OPERATOR_SA = "gauntlet-operator"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SA}"
CRD_NAMES = (
    f"{names.SERVICE_PLURAL}.{names.GROUP}",
    f"{names.SCENARIO_PLURAL}.{names.GROUP}",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.controlplane)
            item.add_marker(pytest.mark.slow)


def wait_for(
    what: str, probe: Callable[[], Any], timeout: float = 90.0, interval: float = 0.3
) -> Any:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    bin_dir = testbin_dir()
    missing = missing_binaries(bin_dir)
    if missing:
        message = f"{HOW_TO_GET} (missing in {bin_dir}: {', '.join(missing)})"
        if os.environ.get("GAUNTLET_REQUIRE_CONTROLPLANE") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    # Not pytest's tmp_path: that is 0700, and the process node runs pods as uid 10001.
    root = Path(tempfile.mkdtemp(prefix="gauntlet-controlplane-"))
    root.chmod(0o755)
    plane = ControlPlane(root / "plane", bin_dir)
    try:
        plane.start()
        yield plane
    finally:
        plane.stop()
        if os.environ.get("GAUNTLET_KEEP_CONTROLPLANE") == "1":
            print(f"\ncontrol plane files kept in {root}")  # logs, audit log, pod roots
        else:
            shutil.rmtree(root, ignore_errors=True)


@dataclass
class Applied:
    """What applying crds/ and deploy/kind server-side gave."""

    crds: subprocess.CompletedProcess[str]
    deploy: subprocess.CompletedProcess[str]


def kustomize(control_plane: ControlPlane, path: str) -> str:
    return control_plane.kubectl(
        "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(REPO / path)
    ).stdout


@pytest.fixture(scope="session")
def applied(control_plane: ControlPlane) -> Applied:
    """``crds/`` then ``deploy/kind`` (everything `make kind-up` applies), server-side."""
    crds = control_plane.kubectl(
        "apply", "--server-side", "-f", "-", stdin=kustomize(control_plane, "crds")
    )
    control_plane.kubectl(
        "wait",
        "--for",
        "condition=Established",
        "--timeout=60s",
        *(f"crd/{n}" for n in CRD_NAMES),
    )
    deploy = control_plane.kubectl(
        "apply", "--server-side", "-f", "-", stdin=kustomize(control_plane, "deploy/kind")
    )
    return Applied(crds, deploy)


@dataclass
class Operator:
    """The operator as ``kopf run`` under its ServiceAccount's token; restartable."""

    control_plane: ControlPlane
    root: Path
    kubeconfig: Path = field(init=False)
    process: Process | None = None
    starts: int = 0

    def __post_init__(self) -> None:
        self.kubeconfig = self.control_plane.service_account_kubeconfig(
            OPERATOR_NAMESPACE, OPERATOR_SA, self.root / "operator.kubeconfig"
        )

    @property
    def log(self) -> Path:
        return self.root / "operator.log"

    def start(self) -> None:
        port = free_port()
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(self.root),
            "LANG": "C.UTF-8",
            "KUBECONFIG": str(self.kubeconfig),
            "GAUNTLET_IMAGE": "aam-gauntlet:dev",
            "GAUNTLET_IMAGE_PULL_POLICY": "IfNotPresent",
            "PYTHONUNBUFFERED": "1",
        }
        argv = [
            str(Path(sys.executable).parent / "kopf"),
            "run",
            "--standalone",
            "--all-namespaces",
            f"--liveness=http://127.0.0.1:{port}/healthz",
            "-m",
            "gauntlet_operator.handlers",
        ]
        self.starts += 1
        with self.log.open("a") as out:
            out.write(f"\n===== operator start {self.starts} =====\n")
        self.process = Process("operator", argv, self.log, env=env, cwd=self.root).start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            self.process.check_alive()
            try:
                with urllib_open(f"http://127.0.0.1:{port}/healthz"):
                    return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"operator not live in 120s:\n{log_tail(self.log)}")

    def kill(self) -> None:
        """SIGKILL: no cleanup, as an OOM kill or a node loss would end it."""
        assert self.process is not None and self.process.popen is not None
        os.killpg(self.process.popen.pid, signal.SIGKILL)
        self.process.popen.wait(10)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def urllib_open(url: str) -> Any:
    import urllib.request

    return urllib.request.urlopen(url, timeout=2)


@pytest.fixture(scope="session")
def operator(control_plane: ControlPlane, applied: Applied) -> Iterator[Operator]:
    root = control_plane.root.parent / "operator"
    root.mkdir()
    running = Operator(control_plane, root)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def node(control_plane: ControlPlane) -> Iterator[ProcessNode]:
    started = ProcessNode(control_plane.api(), control_plane.root.parent / "node").start()
    api = control_plane.api()
    try:
        yield started
        for name in sorted(started.namespaces):
            wait_for(
                f"namespace {name} to go",
                lambda name=name: _gone(api, f"/api/v1/namespaces/{name}"),
                timeout=180,
            )
        assert started.errors == [], "the process node hit errors"
    finally:
        started.stop()


@pytest.fixture
def admin(control_plane: ControlPlane) -> KubeApi:
    return control_plane.api()


@pytest.fixture
def namespace(
    control_plane: ControlPlane, node: ProcessNode, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A fresh namespace whose operator pods the process node runs; deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    api = control_plane.api()
    # "restricted": the Pod Security Standard deploy/kind/namespace.yaml says every pod meets.
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    api.create(
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}},
    )
    node.namespaces.add(name)
    try:
        yield name
    finally:
        # The namespace controller and the garbage collector take it down; the node keeps
        # serving it (confirming pod deletions) until the session's end checks it is gone.
        with contextlib.suppress(ApiError):
            api.delete(f"/api/v1/namespaces/{name}")


def _gone(api: KubeApi, path: str) -> bool:
    try:
        api.get(path)
    except ApiError as exc:
        return exc.status == 404
    return False
