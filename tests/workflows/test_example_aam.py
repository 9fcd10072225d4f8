"""examples/aam-http/naive_aam.py, an external AAM in plain FastAPI + httpx, is judged over the
HTTP contract like any user's AAM: FAILED under a storm, with the invariants a naive client
breaks. It also shows that the contract is implementable without importing anything of ours."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_aam_http import _runs, free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "aam-http" / "naive_aam.py"


@contextlib.contextmanager
def example_aam(token: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--port", str(port)],
        env={**os.environ, "GAUNTLET_AAM_TOKEN": token},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"the example exited {proc.returncode}: {proc.stderr.read()}")  # type: ignore[union-attr]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_example_imports_nothing_of_the_gauntlet() -> None:
    source = EXAMPLE.read_text()
    for package in ("aam", "farm", "workflows", "gauntlet_operator"):
        assert f"from {package}" not in source and f"import {package}" not in source


@pytest.mark.slow
async def test_the_naive_example_aam_is_judged_failed(tmp_path: Path) -> None:
    token = "ex-" + "z" * 30
    with example_aam(token) as url:
        card = await _runs(tmp_path, "storm", url, "full", token)
    assert card.verdict == "FAILED"
    assert card.profile == "external"
    failed = set(card.failed_invariants())
    # No retries, no pacing, no DLQ: transient faults and 429s reach the workflows.
    assert {"retry_success_rate", "rate_limit_etiquette"} <= failed, card.invariants
    assert card.totals()["successes"] > 0  # it did work: judged, not an ERROR


@pytest.mark.slow
async def test_a_wrong_token_for_the_example_is_an_error_naming_the_call(tmp_path: Path) -> None:
    from workflows.runner import ScenarioError

    with example_aam("the-right-token") as url, pytest.raises(ScenarioError) as info:
        await _runs(tmp_path, "mild", url, "full", "a-wrong-token")
    assert "refused the token" in str(info.value) and "/gauntlet/v1/connectors" in str(info.value)
