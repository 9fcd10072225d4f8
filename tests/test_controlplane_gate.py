"""How the control-plane binaries are found, and what the controlplane tests do without them.

The tests themselves are in tests/controlplane/ (marker ``controlplane``); these run anywhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "hack" / "k8s-testbin.sh"
ONE_TEST = (
    "tests/controlplane/test_crds_on_apiserver.py::test_crds_apply_server_side_and_are_established"
)


def run_script(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def test_the_cache_directory_is_per_version_and_kubebuilder_assets_wins(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KUBEBUILDER_ASSETS"}
    env["HOME"] = str(tmp_path)
    env.pop("XDG_CACHE_HOME", None)
    default = run_script("--dir", env=env)
    assert default.stdout.strip() == str(tmp_path / ".cache/aam-gauntlet/k8s/1.34.4")
    assets = tmp_path / "assets"
    assert run_script("--dir", env={**env, "KUBEBUILDER_ASSETS": str(assets)}).stdout.strip() == (
        str(assets)
    )


def test_binaries_that_are_there_are_reused_not_rebuilt(tmp_path: Path) -> None:
    for name in ("etcd", "kube-apiserver", "kube-controller-manager"):
        binary = tmp_path / name
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
    env = {**os.environ, "KUBEBUILDER_ASSETS": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = run_script(env=env)  # no Go on this PATH: it must not need it
    assert result.returncode == 0, result.stderr
    assert "has etcd kube-apiserver kube-controller-manager" in result.stdout
    assert not (tmp_path / "build.log").exists()


def run_controlplane_test(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GAUNTLET_REQUIRE_CONTROLPLANE"}
    env.update(KUBEBUILDER_ASSETS=str(tmp_path), **extra)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", ONE_TEST],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


@pytest.mark.slow
def test_without_binaries_the_controlplane_tests_skip_saying_how_to_get_them(
    tmp_path: Path,
) -> None:
    result = run_controlplane_test(tmp_path)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
    assert "run `make k8s-testbin`" in result.stdout
    assert "KUBEBUILDER_ASSETS" in result.stdout


@pytest.mark.slow
def test_ci_makes_missing_binaries_a_failure(tmp_path: Path) -> None:
    result = run_controlplane_test(tmp_path, GAUNTLET_REQUIRE_CONTROLPLANE="1")
    assert result.returncode == 1, result.stdout
    assert "run `make k8s-testbin`" in result.stdout
    assert "skipped" not in result.stdout.splitlines()[-1]
