"""The one image gets every module and data file: deploy/Dockerfile runs ``pip install .``, so
the wheel built from pyproject.toml must hold everything the farm, runner and operator load."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
#: package in the wheel -> its source folder
PACKAGES = {
    "farm": "farm",
    "aam": "aam",
    "workflows": "workflows",
    "gauntlet_operator": "operator/gauntlet_operator",
}


def test_the_wheel_the_dockerfile_installs_holds_every_source_and_data_file(
    tmp_path: Path,
) -> None:
    # What the Dockerfile COPYs, copied aside (setuptools builds in the source tree).
    source_tree = tmp_path / "src"
    source_tree.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source_tree / name)
    for folder in ("farm", "aam", "workflows", "operator"):
        shutil.copytree(
            REPO / folder, source_tree / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(source_tree),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [
        f"{package}/{path.relative_to(REPO / source)}"
        for package, source in PACKAGES.items()
        for path in (REPO / source).rglob("*")
        if path.is_file()
        and path.suffix in (".py", ".yaml", ".yml", ".json")
        and "__pycache__" not in path.parts
        and f"{package}/{path.relative_to(REPO / source)}" not in names
    ]
    assert missing == []
