"""The runner, run as the Job would run it, produces the status summary the operator expects.

The Job's container spec is built by the operator's own builder; its command line, env and
mounted files (the scenario ConfigMap, the projected service specs, the termination log) are
reproduced under a temporary root, the one service URL points at a farm on loopback instead of
cluster DNS, and the real ``gauntlet run`` runs as a subprocess. Its termination message then
goes through the operator's reader, which must see a verdict and a scorecard, not an Error.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from gauntlet_operator import manifests, names
from gauntlet_operator.observe import run_state
from gauntlet_operator.status import ScenarioPhase
from gauntlet_operator.validation import farm_config, scenario_document

from farm.server import running_farm
from farm.spec import ServiceSpec

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "gauntlet"
SCENARIO_SPEC = {
    "description": "one service, one workflow, briefly",
    "mode": "mild",
    "duration_seconds": 2,
    "seed": 3,
    "services": ["stripe"],
    "tenants": ["acme"],
    "workflows": [{"name": "high_volume_read", "concurrency": 1}],
    "profile": {"base": "full"},
}


def owner(kind: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": names.API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": NAMESPACE, "uid": f"uid-{name}"},
    }


def writable_paths(job: dict[str, Any], root: Path) -> list[Path]:
    """Where the pod may write: its emptyDir mounts and the termination log."""
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    empty = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    paths = [root / m["mountPath"].lstrip("/") for m in container["volumeMounts"]]
    writable = [
        root / m["mountPath"].lstrip("/")
        for m in container["volumeMounts"]
        if m["name"] in empty and not m.get("readOnly")
    ]
    assert len(writable) < len(paths)  # the ConfigMap mounts are not writable
    return [*writable, root / container["terminationMessagePath"].lstrip("/")]


def stray_files(root: Path, allowed: list[Path], mounted: set[str]) -> list[Path]:
    """Files under ``root`` outside the writable places (the mounted ConfigMap keys aside)."""
    return [
        path
        for path in root.rglob("*")
        if path.is_file()
        and not any(path.is_relative_to(place) for place in allowed)
        and path.name not in mounted
    ]


def materialize(job: dict[str, Any], files: dict[str, dict[str, str]], root: Path) -> list[str]:
    """Write each mounted ConfigMap's keys under ``root``; return the command, paths rebased."""
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts: dict[str, Path] = {}
    for mount in container["volumeMounts"]:
        target = root / mount["mountPath"].lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        mounts[mount["mountPath"]] = target
        volume = volumes[mount["name"]]
        sources = (
            [volume["configMap"]]
            if "configMap" in volume
            else [s["configMap"] for s in volume.get("projected", {}).get("sources", [])]
        )
        for source in sources:
            for key, text in files[source["name"]].items():
                (target / key).write_text(text)
    log = container["terminationMessagePath"]
    mounts[log] = root / log.lstrip("/")
    mounts[log].parent.mkdir(parents=True, exist_ok=True)

    def rebase(arg: str) -> str:
        for path, target in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
            if arg == path or arg.startswith(path + "/"):
                return str(target) + arg[len(path) :]
        return arg

    return [rebase(arg) for arg in container["command"]]


async def test_runner_as_the_job_runs_it_writes_the_summary_the_operator_reads(
    tmp_path: Path,
) -> None:
    stripe_data = yaml.safe_load((REPO / "farm" / "configs" / "stripe.yaml").read_text())
    stripe = ServiceSpec.model_validate(stripe_data)
    token = manifests.admin_token_secret(NAMESPACE)["stringData"][names.ADMIN_TOKEN_KEY]
    service_url = names.farm_url("stripe", NAMESPACE)
    job = manifests.runner_job(
        "tiny",
        NAMESPACE,
        1,
        SCENARIO_SPEC["duration_seconds"],
        {"stripe": service_url},
        [names.farm_name("stripe")],
        owner(names.SCENARIO_KIND, "tiny"),
        manifests.PodSettings(),
    )
    scenario_cm = manifests.scenario_configmap(
        "tiny",
        NAMESPACE,
        1,
        scenario_document("tiny", SCENARIO_SPEC),
        {**job, "metadata": {**job["metadata"], "uid": "uid-job"}},
    )
    farm_cm = manifests.farm_configmap(
        "stripe", NAMESPACE, farm_config(stripe_data), owner(names.SERVICE_KIND, "stripe")
    )
    files = {cm["metadata"]["name"]: cm["data"] for cm in (scenario_cm, farm_cm)}
    command = materialize(job, files, tmp_path)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env_names = {e["name"] for e in container["env"]}
    assert env_names == {"GAUNTLET_ADMIN_TOKEN"}

    async with running_farm([stripe], admin_token=token, seed=3) as farm:
        # Cluster DNS does not exist here: the one rewrite is the service's address.
        command = [arg.replace(service_url, farm.url) for arg in command]
        executable = str(Path(sys.executable).parent / command[0])
        process = await asyncio.create_subprocess_exec(
            executable,
            *command[1:],
            cwd=tmp_path,
            env={"GAUNTLET_ADMIN_TOKEN": token, "PATH": str(Path(sys.executable).parent)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
    log_text = output.decode(errors="replace")
    assert process.returncode in (0, 1), log_text[-3000:]

    message = (tmp_path / container["terminationMessagePath"].lstrip("/")).read_text()
    assert len(message.encode()) <= 4096
    finished = "Complete" if process.returncode == 0 else "Failed"
    job_status = {"status": {"conditions": [{"type": finished, "status": "True"}]}}
    pod = {
        "metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"},
        "status": {
            "containerStatuses": [
                {
                    "name": "runner",
                    "state": {"terminated": {"exitCode": process.returncode, "message": message}},
                }
            ]
        },
    }
    state = run_state(job_status, [pod])
    expected = ScenarioPhase.Passed if process.returncode == 0 else ScenarioPhase.Failed
    assert state.phase is expected, (state, log_text[-2000:])
    assert state.scorecard is not None
    assert state.scorecard.mode == "mild" and state.scorecard.seed == 3
    assert state.scorecard.invariants, "the summary lists the invariants"
    assert state.scorecard.attempts and state.scorecard.attempts > 0

    # The root filesystem is read-only in the pod: the runner (whose working directory here is
    # the fake root) must have written only into its emptyDirs and the termination log.
    allowed = writable_paths(job, tmp_path)
    mounted = set().union(*(set(data) for data in files.values()))
    assert stray_files(tmp_path, allowed, mounted) == []
    assert (tmp_path / "tmp" / "scorecard.json").is_file()  # --json went to the /tmp emptyDir
    assert any((tmp_path / "var" / "lib" / "gauntlet" / "runner").iterdir())  # --state-dir
