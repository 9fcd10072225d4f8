"""One run per farm at a time: who, if anyone, a scenario must wait for. Pure: objects in.

A farm (one SyntheticService's Deployment) keeps its tokens, rate-limit buckets, chaos level
and ledger in memory, and every run resets it and reads its ledger: two runs on one farm spoil
each other's verdicts. So a scenario whose farms are in use is ``Queued``; it starts when they
are free, in creation order among the scenarios queued for the same farms.

A farm is in use by:

- a runner Job that has not finished and mounts the farm's ConfigMap (whatever made it: a
  deleted scenario's Job still runs until it is gone; the scenario's own previous generation,
  deleted in the foreground, is there until its pod has stopped), or
- a scenario that claimed it and whose Job does not exist yet: ``phase: Pending`` with
  ``status.jobName`` for its current generation. The operator writes the claim before it
  creates the Job, under one lock, so the claim covers the moment between the two (and an
  operator that stopped in between).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gauntlet_operator import names
from gauntlet_operator.status import ScenarioPhase


@dataclass(frozen=True)
class Blocker:
    """What a scenario waits for: another scenario, and the farm they share."""

    scenario: str
    farm: str
    running: bool  # True: its run uses the farm; False: it was queued for the farm earlier
    #: The scenario's own superseded run (this Job), still stopping.
    superseded_job: str | None = None

    def message(self) -> str:
        if self.superseded_job:
            return (
                f"Queued behind GauntletScenario {self.scenario}: its previous generation's run "
                f"(Job {self.superseded_job}) is still stopping on farm {self.farm}"
            )
        why = "its run is using" if self.running else "it was queued earlier for"
        return (
            f"Queued behind GauntletScenario {self.scenario}: {why} farm {self.farm} "
            "(one run per farm at a time; it starts when the farm is free)"
        )


def job_finished(job: Mapping[str, Any]) -> bool:
    """A Job with a true ``Complete`` or ``Failed`` condition."""
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions
    )


def job_farms(job: Mapping[str, Any]) -> set[str]:
    """The farm ConfigMaps a runner Job projects into its pod (one per service it uses)."""
    spec = ((job.get("spec") or {}).get("template") or {}).get("spec") or {}
    farms: set[str] = set()
    for volume in spec.get("volumes") or []:
        for source in (volume.get("projected") or {}).get("sources") or []:
            name = (source.get("configMap") or {}).get("name")
            if name:
                farms.add(name)
    return farms


def _order(scenario: Mapping[str, Any]) -> tuple[str, str]:
    meta = scenario.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))


def blocker(
    scenario: Mapping[str, Any],
    farms: Mapping[str, str],
    jobs: Iterable[Mapping[str, Any]],
    scenarios: Iterable[Mapping[str, Any]],
) -> Blocker | None:
    """Who ``scenario`` must wait for before using ``farms`` (farm ConfigMap -> service name).

    ``jobs`` are the namespace's runner Jobs, ``scenarios`` its GauntletScenarios (fresh).
    """
    me = (scenario.get("metadata") or {}).get("name")
    jobs = list(jobs)
    by_name = {(j.get("metadata") or {}).get("name"): j for j in jobs}
    for job in sorted(jobs, key=lambda j: str((j.get("metadata") or {}).get("name"))):
        owner = ((job.get("metadata") or {}).get("labels") or {}).get(names.LABEL_SCENARIO)
        if job_finished(job):
            continue
        shared = sorted(job_farms(job) & farms.keys())
        if shared and owner == me:
            # Our own older generation (deleted in the foreground): its pod may still run.
            name = str((job.get("metadata") or {}).get("name"))
            return Blocker(str(owner), farms[shared[0]], running=True, superseded_job=name)
        if shared:
            return Blocker(str(owner), farms[shared[0]], running=True)
    mine = _order(scenario)
    for other in sorted(scenarios, key=_order):
        meta, status = other.get("metadata") or {}, other.get("status") or {}
        if meta.get("name") == me:
            continue
        other_farms = {names.farm_name(s) for s in status.get("farms") or []}
        shared = sorted(other_farms & farms.keys())
        if not shared:
            continue
        phase = status.get("phase")
        if phase == ScenarioPhase.Queued.value and _order(other) < mine:
            return Blocker(str(meta.get("name")), farms[shared[0]], running=False)
        # Claimed, its Job not created yet (a Job that exists was weighed above).
        claimed = (
            phase == ScenarioPhase.Pending.value
            and status.get("jobName")
            and status.get("jobName") not in by_name
            and status.get("observedGeneration") == meta.get("generation")
        )
        if claimed:
            return Blocker(str(meta.get("name")), farms[shared[0]], running=True)
    return None
