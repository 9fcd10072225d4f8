"""A read-only or full ``--state-dir`` is one sentence and exit 2 (issue 10, probe row 7).

Before: tracebacks, and the runner exited 1 (as if FAILED). The file systems are real: small
tmpfs mounts, read-only or filled up (root only; skipped where mounting is not allowed).
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workflows.cli import app

runner = CliRunner()


@contextlib.contextmanager
def _tmpfs(where: Path, options: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


@pytest.fixture(params=["read-only", "full"])
def bad_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    if request.param == "read-only":
        with _tmpfs(tmp_path / "ro", "ro,size=1m") as where:
            yield where / "state"
    else:
        with _tmpfs(tmp_path / "full", "size=256k") as where:
            with contextlib.suppress(OSError), open(where / "filler", "wb") as f:
                for _ in range(1000):
                    f.write(b"\0" * 4096)
                    f.flush()
            yield where / "state"


def _one_sentence(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def test_farm_serve_on_a_bad_state_dir(bad_dir: Path) -> None:
    result = runner.invoke(app, ["farm", "serve", "--port", "0", "--state-dir", str(bad_dir)])
    assert result.exit_code == 2, result.output
    line = _one_sentence(result.output)
    assert str(bad_dir) in line and "cannot write" in line


def test_run_on_a_bad_state_dir(bad_dir: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: t\nduration_seconds: 1\nservices: [stripe]\n")
    result = runner.invoke(
        app,
        ["run", str(scenario), "--farm-url", "http://127.0.0.1:9", "--state-dir", str(bad_dir)],
    )
    assert result.exit_code == 2, result.output
    line = _one_sentence(result.output)
    assert "--state-dir" in line and "cannot write" in line


def test_backend_serve_on_a_bad_state_dir(bad_dir: Path) -> None:
    result = runner.invoke(app, ["backend", "serve", "--port", "0", "--state-dir", str(bad_dir)])
    assert result.exit_code == 2, result.output
    assert "cannot write" in _one_sentence(result.output)
