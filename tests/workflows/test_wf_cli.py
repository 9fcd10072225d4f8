"""``gauntlet run`` / ``runs`` / ``dlq`` as a person or a CI job uses them: exit codes and files."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner
from wf_helpers import preseeded

from farm.server import running_farm
from workflows.cli import app

runner = CliRunner()


@pytest.fixture
def farm_in_thread(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A farm in its own thread and loop (the CLI runs its own ``asyncio.run``):
    yields (url, admin token file)."""
    ready: dict[str, str] = {}
    started = threading.Event()
    stop: asyncio.Event | None = None
    loop_box: list[asyncio.AbstractEventLoop] = []

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        loop_box.append(asyncio.get_running_loop())
        async with running_farm(
            preseeded("stripe", "salesforce"), seed=42, state_dir=tmp_path / "farm"
        ) as farm:
            ready["url"], ready["token"] = farm.url, farm.admin_token
            started.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(20), "farm did not start"
    token_file = tmp_path / "admin-token"
    token_file.write_text(ready["token"])
    try:
        yield ready["url"], token_file
    finally:
        assert stop is not None
        loop_box[0].call_soon_threadsafe(stop.set)
        thread.join(20)


def _scenario(tmp_path: Path, **extra: str) -> Path:
    path = tmp_path / "scenario.yaml"
    lines = [
        "name: cli-test",
        "mode: mild",
        "duration_seconds: 2",
        "services: [stripe]",
        "tenants: [acme]",
        "workflows:",
        "  - {name: high_volume_read, concurrency: 1}",
        "  - {name: idempotent_write, concurrency: 1}",
    ]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_unreachable_farm_is_a_config_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "run",
            str(_scenario(tmp_path)),
            "--farm-url",
            "http://127.0.0.1:9",  # discard port: nothing listens
            "--state-dir",
            str(tmp_path / "s"),
            "--no-live",
        ],
    )
    assert result.exit_code == 2
    assert "unreachable" in result.output and "is a farm serving there?" in result.output
    result = runner.invoke(
        app, ["run", str(_scenario(tmp_path)), "--farm-url", "notaurl", "--state-dir", "x"]
    )
    assert result.exit_code == 2
    assert "--farm-url 'notaurl': expected http://host:port" in result.output


def test_bad_scenario_and_bad_profile_are_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nservices: [stripe]\nworkflows: []\n")
    result = runner.invoke(app, ["run", str(bad), "--state-dir", str(tmp_path / "s")])
    assert result.exit_code == 2 and "workflows" in result.output
    result = runner.invoke(
        app, ["run", str(_scenario(tmp_path)), "--profile", "brave", "--state-dir", str(tmp_path)]
    )
    assert result.exit_code == 2 and "profile" in result.output
    result = runner.invoke(
        app, ["run", str(_scenario(tmp_path)), "--service-url", "stripe", "--state-dir", "x"]
    )
    assert result.exit_code == 2 and "SERVICE=" in result.output


def test_bad_mode_override_names_the_option_and_every_problem_gets_an_error_line(
    tmp_path: Path,
) -> None:
    result = runner.invoke(
        app, ["run", str(_scenario(tmp_path)), "--mode", "tornado", "--state-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "--mode: expected one of" in result.output and "'tornado'" in result.output
    assert "errors.pydantic.dev" not in result.output and "validation error" not in result.output
    bad = tmp_path / "two.yaml"
    bad.write_text(
        _scenario(tmp_path).read_text().replace("mode: mild", "mode: tornado") + "seed: -1\n"
    )
    result = runner.invoke(app, ["run", str(bad), "--state-dir", str(tmp_path)])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 2, result.output
    assert all(line.startswith(f"error {bad}: ") for line in lines), result.output


def test_a_service_missing_from_configs_says_where_it_looked_and_what_to_pass(
    tmp_path: Path,
) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(_scenario(tmp_path).read_text().replace("[stripe]", "[billing-outage]"))
    result = runner.invoke(
        app,
        ["run", str(path), "--farm-url", "http://127.0.0.1:9", "--state-dir", str(tmp_path)],
    )
    assert result.exit_code == 2
    assert "services.billing-outage: no such service spec in" in result.output
    assert "--configs" in result.output


def test_farm_serve_on_a_taken_port_exits_2_and_keeps_the_running_farms_token(
    tmp_path: Path,
) -> None:
    import socket

    token_file = tmp_path / "admin-token"
    token_file.write_text("token-of-the-farm-already-serving\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = runner.invoke(
            app, ["farm", "serve", "--port", str(port), "--state-dir", str(tmp_path)]
        )
    assert result.exit_code == 2
    assert f"127.0.0.1:{port} is already in use" in result.output
    assert token_file.read_text() == "token-of-the-farm-already-serving\n"
    assert not (tmp_path / "credentials.json").exists()


@pytest.mark.slow
def test_run_writes_scorecard_termination_log_and_history(
    farm_in_thread: tuple[str, Path], tmp_path: Path
) -> None:
    url, token_file = farm_in_thread
    state = tmp_path / "state"
    card_path, term = tmp_path / "card.json", tmp_path / "termination-log"
    result = runner.invoke(
        app,
        [
            "run",
            str(_scenario(tmp_path)),
            "--service-url",
            f"stripe={url}",
            "--admin-token-file",
            str(token_file),
            "--state-dir",
            str(state),
            "--json",
            str(card_path),
            "--termination-log",
            str(term),
            "--no-live",
        ],
    )
    card = json.loads(card_path.read_text())
    assert result.exit_code == (0 if card["verdict"] == "PASSED" else 1), result.output
    assert card["scenario"] == "cli-test" and card["connectors"][0]["connector"] == "stripe:acme"
    summary = json.loads(term.read_text())
    assert summary["verdict"] == card["verdict"] and len(term.read_bytes()) <= 4096
    listed = runner.invoke(app, ["runs", "list", "--state-dir", str(state)])
    assert card["run_id"] in listed.output
    shown = runner.invoke(app, ["runs", "show", card["run_id"], "--state-dir", str(state)])
    assert shown.exit_code == 0 and "verdict" in shown.output
    dlq = runner.invoke(app, ["dlq", "list", "--state-dir", str(state)])
    assert dlq.exit_code == 0 and "DLQ of run" in dlq.output


@pytest.mark.slow
def test_compare_exits_zero_only_when_naive_fails_and_full_passes(
    farm_in_thread: tuple[str, Path], tmp_path: Path
) -> None:
    url, token_file = farm_in_thread
    out = tmp_path / "both.json"
    result = runner.invoke(
        app,
        [
            "run",
            str(_scenario(tmp_path)),
            "--mode",
            "storm",
            "--compare",
            "naive,full",
            "--farm-url",
            url,
            "--admin-token-file",
            str(token_file),
            "--state-dir",
            str(tmp_path / "state"),
            "--json",
            str(out),
            "--no-live",
        ],
    )
    cards = json.loads(out.read_text())
    verdicts = {c["profile"]: c["verdict"] for c in cards}
    expected = verdicts == {"naive": "FAILED", "full": "PASSED"}
    assert result.exit_code == (0 if expected else 1), result.output
    assert "profiles compared" in result.output
    assert verdicts["naive"] == "FAILED"


def test_every_option_and_argument_of_every_command_has_help() -> None:
    import typer.main

    def walk(command: Any, name: str) -> Iterator[tuple[str, Any]]:
        for param in command.params:
            yield name, param
        for sub_name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, f"{name} {sub_name}")

    assert len(list(walk(typer.main.get_command(app), "gauntlet"))) > 30

    missing = [
        f"{name} {param.name}"
        for name, param in walk(typer.main.get_command(app), "gauntlet")
        if param.name != "help" and not getattr(param, "help", None)
    ]
    assert missing == []


def test_reading_commands_on_a_state_dir_without_runs_say_so_and_create_nothing(
    tmp_path: Path,
) -> None:
    state = tmp_path / "never-used"
    listed = runner.invoke(app, ["runs", "list", "--state-dir", str(state)])
    # The console wraps long paths at its width: compare the texts without any whitespace.
    assert listed.exit_code == 0 and _bare(f"no runs in {state} yet") in _bare(listed.output)
    shown = runner.invoke(app, ["runs", "show", "abc", "--state-dir", str(state)])
    assert shown.exit_code == 2 and "no run 'abc'" in shown.output
    dlq = runner.invoke(app, ["dlq", "list", "--state-dir", str(state)])
    assert dlq.exit_code == 2 and _bare(f"no runs in {state}") in _bare(dlq.output)
    assert not state.exists()


def test_dlq_replay_with_nothing_waiting_says_so_without_calling_the_farm(tmp_path: Path) -> None:
    from aam import AamProfile, Mesh
    from workflows.history import RunHistory

    state = tmp_path / "state"
    RunHistory(state / "history.sqlite").start("r1", "s", "storm", "full", 42)

    async def empty_dlq() -> None:
        mesh = await Mesh.open(state / "runs" / "r1" / "aam", AamProfile.parse("full"))
        await mesh.close()

    asyncio.run(empty_dlq())
    result = runner.invoke(
        app, ["dlq", "replay", "--state-dir", str(state), "--farm-url", "http://127.0.0.1:9"]
    )
    assert result.exit_code == 0, result.output
    assert "nothing waiting in the DLQ of run r1 (empty)" in result.output


def test_crds_check_says_ok_when_nothing_is_stale() -> None:
    repo = Path(__file__).resolve().parents[2]
    result = runner.invoke(app, ["crds", "--check", "--root", str(repo)])
    assert result.exit_code == 0 and "CRDs and examples match the models" in result.output


def test_an_unwritable_json_path_is_a_usage_error_before_the_run(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for target in (blocker / "out.json", tmp_path):  # a file as the folder; a folder as the file
        result = runner.invoke(
            app,
            [
                "run",
                str(_scenario(tmp_path)),
                "--json",
                str(target),
                "--farm-url",
                "http://127.0.0.1:9",
                "--state-dir",
                str(tmp_path / "s"),
            ],
        )
        assert result.exit_code == 2, result.output
        assert f"--json {target}:" in result.output and "unreachable" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_an_interrupted_run_says_so_and_is_recorded_as_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workflows import cli_run
    from workflows.history import RunHistory

    async def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_run, "run_scenario", interrupted)
    state = tmp_path / "s"
    result = runner.invoke(app, ["run", str(_scenario(tmp_path)), "--state-dir", str(state)])
    assert "interrupted; the farm is back to calm" in result.output
    (row,) = RunHistory(state / "history.sqlite").list(5)
    assert row["status"] == "error" and row["error"] == "interrupted"


def _bare(text: str) -> str:
    return "".join(text.split())
