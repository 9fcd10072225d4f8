"""The package layering, enforced with import-linter (contracts in pyproject.toml).

``farm`` and ``aam`` never import each other, nor ``workflows`` / ``gauntlet_operator``; no
package has an import cycle between its modules. A second test proves the cycle contract bites
on a package that has one, so a broken config cannot pass silently.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(
    config: Path, cwd: Path, extra_path: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = None
    if extra_path is not None:
        import os

        env = {**os.environ, "PYTHONPATH": str(extra_path)}
    return subprocess.run(
        [str(LINT), "--no-cache", str(config)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_the_layering_contracts_hold() -> None:
    result = _lint(ROOT / "pyproject.toml", ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for contract in (
        "farm and aam are independent of each other KEPT",
        "farm imports neither the runner nor the operator KEPT",
        "aam imports neither the runner nor the operator KEPT",
        "no import cycles inside any package KEPT",
    ):
        assert contract in result.stdout


def test_aam_source_names_no_farm_module() -> None:
    # Belt and braces beside import-linter: not even a lazy or TYPE_CHECKING import.
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "aam").glob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if line.lstrip().startswith(("import farm", "from farm"))
    ]
    assert offenders == []


def test_the_cycle_contract_catches_a_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "src" / "loopy"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from loopy import b\n")
    (pkg / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import loopy.a\n"
    )
    config = tmp_path / "contracts.toml"
    config.write_text(
        '[tool.importlinter]\nroot_packages = ["loopy"]\n\n'
        '[[tool.importlinter.contracts]]\nname = "no cycles"\ntype = "acyclic_siblings"\n'
        'ancestors = ["loopy"]\n'
    )
    result = _lint(config, tmp_path, extra_path=tmp_path / "src")
    assert result.returncode != 0, result.stdout
    assert "no cycles BROKEN" in result.stdout
