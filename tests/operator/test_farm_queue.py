"""The farm queue's decision: who a scenario waits for (pure; the real thing is in
tests/controlplane/test_operator_on_apiserver.py)."""

from __future__ import annotations

from typing import Any

from gauntlet_operator import manifests, names
from gauntlet_operator.farm_queue import Blocker, blocker, job_farms, job_finished

NS = "ns"
STRIPE = {names.farm_name("stripe"): "stripe"}
BOTH = {names.farm_name("stripe"): "stripe", names.farm_name("github"): "github"}


def scenario(name: str, created: str, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": created, "generation": 1},
        "status": status or {},
    }


def job(owner: str, services: list[str], finished: str | None = None) -> dict[str, Any]:
    built = manifests.runner_job(
        owner,
        NS,
        1,
        5,
        {s: names.farm_url(s, NS) for s in services},
        [names.farm_name(s) for s in services],
        {
            "apiVersion": names.API_VERSION,
            "kind": "GauntletScenario",
            "metadata": {"name": owner, "uid": "u"},
        },
        manifests.PodSettings(),
    )
    if finished:
        built["status"] = {"conditions": [{"type": finished, "status": "True"}]}
    return built


def test_a_runner_job_names_its_farms_and_its_end() -> None:
    running = job("a", ["stripe", "github"])
    assert job_farms(running) == set(BOTH)
    assert not job_finished(running)
    assert job_finished(job("a", ["stripe"], "Complete"))
    assert job_finished(job("a", ["stripe"], "Failed"))


def test_a_free_farm_needs_no_waiting() -> None:
    me = scenario("b", "2026-01-01T00:00:02Z")
    assert blocker(me, STRIPE, [job("a", ["github"])], [me]) is None
    assert blocker(me, STRIPE, [job("a", ["stripe"], "Complete")], [me]) is None


def test_an_unfinished_job_on_the_same_farm_queues_the_scenario() -> None:
    me = scenario("b", "2026-01-01T00:00:02Z")
    found = blocker(me, BOTH, [job("a", ["stripe"])], [me])
    assert found == Blocker("a", "stripe", running=True)
    assert "Queued behind GauntletScenario a" in found.message()
    assert "farm stripe" in found.message()


def test_its_own_older_generation_queues_a_scenario_until_that_run_is_gone() -> None:
    me = scenario("a", "2026-01-01T00:00:02Z")
    older = job("a", ["stripe"])
    found = blocker(me, STRIPE, [older], [me])
    assert found == Blocker("a", "stripe", True, superseded_job=older["metadata"]["name"])
    assert "previous generation's run" in found.message()
    assert blocker(me, STRIPE, [job("a", ["stripe"], "Failed")], [me]) is None
    assert blocker(me, STRIPE, [job("a", ["github"])], [me]) is None  # no shared farm


def test_a_claim_without_a_job_yet_holds_the_farm() -> None:
    claimed = scenario(
        "a",
        "2026-01-01T00:00:01Z",
        {"phase": "Pending", "jobName": "gsc-a-g1", "observedGeneration": 1, "farms": ["stripe"]},
    )
    me = scenario("b", "2026-01-01T00:00:02Z")
    assert blocker(me, STRIPE, [], [claimed, me]) == Blocker("a", "stripe", running=True)
    # Once its Job exists and has finished, the farm is free.
    assert blocker(me, STRIPE, [job("a", ["stripe"], "Complete")], [claimed, me]) is None
    # A finished scenario holds nothing, whatever its status still names.
    done = scenario("a", "2026-01-01T00:00:01Z", {**claimed["status"], "phase": "Passed"})
    assert blocker(me, STRIPE, [], [done, me]) is None


def test_scenarios_queued_for_a_farm_start_in_creation_order() -> None:
    earlier = scenario("z-first", "2026-01-01T00:00:01Z", {"phase": "Queued", "farms": ["stripe"]})
    later = scenario("a-second", "2026-01-01T00:00:02Z", {"phase": "Queued", "farms": ["stripe"]})
    assert blocker(later, STRIPE, [], [earlier, later]) == Blocker("z-first", "stripe", False)
    assert blocker(earlier, STRIPE, [], [earlier, later]) is None
    other_farm = scenario("c", "2026-01-01T00:00:00Z", {"phase": "Queued", "farms": ["github"]})
    assert blocker(earlier, STRIPE, [], [other_farm, earlier]) is None
