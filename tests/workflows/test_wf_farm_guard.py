"""Run isolation and trustworthy ground truth: the farm lease, and ERROR for a farm that
restarted or was reset by someone else during a run (issue 10, probe rows 1 and 2)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner
from wf_helpers import preseeded, scenario, write_specs

from farm.server import running_farm
from workflows.cli import app
from workflows.runner import RunOptions, ScenarioError, run_scenario

ADMIN = "fixed-admin-token-as-under-the-operator"


def _scenario(duration: float = 3.0):  # type: ignore[no-untyped-def]
    return scenario(
        name="guarded",
        mode="mild",
        duration_seconds=duration,
        services=["stripe"],
        tenants=["acme"],
        workflows=[
            {"name": "high_volume_read", "concurrency": 1},
            {"name": "idempotent_write", "concurrency": 1},
        ],
    )


def _options(url: str, tmp_path: Path, name: str, wait: float = 0.0) -> RunOptions:
    return RunOptions(
        farm_urls={"*": url},
        admin_token=ADMIN,
        state_dir=tmp_path / name,
        configs=[write_specs(preseeded("stripe"), tmp_path / "configs")],
        progress_interval=0.2,
        wait_for_farm=wait,
    )


async def _wait_for_lease(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        for _ in range(200):
            lease = (
                await client.get("/admin/lease", headers={"Authorization": f"Bearer {ADMIN}"})
            ).json()["lease"]
            if lease is not None:
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the first run never took the lease")


async def test_a_second_run_on_a_busy_farm_is_refused_and_the_first_is_untouched(
    tmp_path: Path,
) -> None:
    async with running_farm(preseeded("stripe"), admin_token=ADMIN) as farm:
        first = asyncio.create_task(run_scenario(_scenario(), _options(farm.url, tmp_path, "a")))
        await _wait_for_lease(farm.url)
        with pytest.raises(ScenarioError) as refused:
            await run_scenario(_scenario(), _options(farm.url, tmp_path, "b"))
        card = await first
        # The first run's verdict is its own: the second never reset the farm under it.
        assert card.verdict == "PASSED", [i for i in card.invariants if i.status == "fail"]
        assert farm.app.farm.epoch == 1
        assert farm.app.farm.leases.current() is None  # released at the end
    message = str(refused.value)
    assert "is busy" in message and "leased by run" in message and "guarded" in message


async def test_a_waiting_run_starts_when_the_farm_is_free(tmp_path: Path) -> None:
    async with running_farm(preseeded("stripe"), admin_token=ADMIN) as farm:
        first = asyncio.create_task(run_scenario(_scenario(2.0), _options(farm.url, tmp_path, "a")))
        await _wait_for_lease(farm.url)
        second = await run_scenario(_scenario(1.0), _options(farm.url, tmp_path, "b", wait=60))
        card = await first
        assert card.verdict == "PASSED" and second.verdict == "PASSED"
        assert farm.app.farm.epoch == 2  # one reset each, one after the other


async def test_a_farm_reset_behind_the_runs_back_is_error_not_a_verdict(tmp_path: Path) -> None:
    async with running_farm(preseeded("stripe"), admin_token=ADMIN) as farm:
        run = asyncio.create_task(run_scenario(_scenario(2.0), _options(farm.url, tmp_path, "a")))
        await _wait_for_lease(farm.url)
        await asyncio.sleep(0.5)
        farm.app.farm.reset()  # e.g. by hand, after the run's lease lapsed while it hung
        with pytest.raises(ScenarioError) as error:
            await run
    assert str(error.value).startswith("ERROR:")
    assert "reset by someone else" in str(error.value)


def test_cli_on_a_busy_farm_says_who_holds_it_and_exits_2(tmp_path: Path) -> None:
    from test_wf_cli import _scenario as cli_scenario

    async def main() -> tuple[int, str]:
        async with running_farm(preseeded("stripe"), admin_token=ADMIN) as farm:
            async with httpx.AsyncClient(base_url=farm.url) as client:
                taken = await client.post(
                    "/admin/lease",
                    json={"holder": "run 42 of someone else", "ttl_seconds": 60},
                    headers={"Authorization": f"Bearer {ADMIN}"},
                )
                assert taken.status_code == 200
            token = tmp_path / "token"
            token.write_text(ADMIN)
            result = await asyncio.to_thread(
                CliRunner().invoke,
                app,
                [
                    "run", str(cli_scenario(tmp_path)), "--farm-url", farm.url,
                    "--admin-token-file", str(token), "--state-dir", str(tmp_path / "s"),
                    "--no-live",
                ],
            )  # fmt: skip
            return result.exit_code, result.output

    code, output = asyncio.run(main())
    assert code == 2, output
    assert "busy" in output and "run 42 of someone else" in output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_farm(port: int, state: Path, configs: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "workflows", "farm", "serve", "--port", str(port),
            "--state-dir", str(state), "--configs", str(configs),
        ],
        env={**os.environ, "GAUNTLET_ADMIN_TOKEN": ADMIN},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"farm exited with {proc.returncode}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("farm did not start")


@pytest.mark.slow
async def test_a_farm_killed_and_restarted_mid_run_gives_error_with_the_reason(
    tmp_path: Path,
) -> None:
    """Probe row 1: kill -9 the farm mid-run and restart it (same state dir, fixed admin token,
    as under the operator). Before: FAILED with 144 "lost" writes. Now: ERROR, and the restarted
    farm still holds every write the dead one committed."""
    port = _free_port()
    state = tmp_path / "farm"
    configs = write_specs(preseeded("stripe"), tmp_path / "configs")
    url = f"http://127.0.0.1:{port}"
    farm = _start_farm(port, state, configs)
    restarted: subprocess.Popen[bytes] | None = None
    try:
        run = asyncio.create_task(run_scenario(_scenario(30.0), _options(url, tmp_path, "a")))
        await _wait_for_lease(url)
        await asyncio.sleep(1.5)
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            admin = {"Authorization": f"Bearer {ADMIN}"}
            await asyncio.sleep(0.2)  # > the store's flush interval
            before = (await client.get("/admin/ledger", headers=admin)).json()
        os.kill(farm.pid, signal.SIGKILL)
        farm.wait()
        restarted = await asyncio.to_thread(_start_farm, port, state, configs)
        # The run (30 s) outlasts the restart even on a loaded machine: it must notice the
        # restart at its end, not find the farm gone.
        assert not run.done(), "the run ended before the farm was back"
        with pytest.raises(ScenarioError) as error:
            await run
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            after = (await client.get("/admin/ledger", headers=admin)).json()
    finally:
        for proc in (farm, restarted):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(10)
    assert str(error.value).startswith("ERROR:") and "restarted during the run" in str(error.value)
    kept = {w["seq"] for w in after["writes"]}
    assert before["writes"], "no write committed before the kill"
    assert {w["seq"] for w in before["writes"]} <= kept
