"""Scenario files, the scorecard's compact summary and the workflow registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from farm.loader import DEFAULT_CONFIG_DIR, load_specs
from workflows.library import REGISTRY, drift_target
from workflows.runner import ScenarioError, load_scenario, profiles_from, with_overrides
from workflows.scenario import Mode
from workflows.scorecard import (
    TERMINATION_LOG_LIMIT,
    ConnectorFigures,
    InvariantResult,
    Scorecard,
    termination_summary,
)

SCENARIOS = sorted((Path(__file__).parents[2] / "workflows" / "scenarios").glob("*.yaml"))
SCENARIO_DIR = Path(__file__).parents[2] / "workflows" / "scenarios"
#: Preseeded services plus the ones shipped next to the scenarios (e.g. the outage service).
SPECS = {s.id: s for s in load_specs([DEFAULT_CONFIG_DIR, SCENARIO_DIR / "outage-services"])}


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_example_scenario_loads_and_names_real_services(path: Path) -> None:
    spec = load_scenario(path)
    for service in spec.services:
        assert service in SPECS
    for run in spec.workflows:
        workflow = REGISTRY[run.name]
        services = run.services or spec.services
        assert any(workflow.supports(SPECS[s]) for s in services), (run.name, services)


def test_the_three_modes_and_every_story_have_a_scenario() -> None:
    names = {p.stem for p in SCENARIOS}
    assert {"mild", "storm", "hell"} <= names
    assert {
        "token-expiry",
        "rate-limit-storm",
        "schema-drift",
        "network-chaos-dlq",
        "multi-service-storm",
    } <= names


def test_a_bad_scenario_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\nmode: tornado\nservices: [stripe]\nworkflows: [{name: high_volume_read}]\n"
    )
    with pytest.raises(ScenarioError) as info:
        load_scenario(bad)
    assert str(bad) in str(info.value) and "mode" in str(info.value)
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario(tmp_path / "missing.yaml")


def test_a_scheduled_outage_must_hit_a_service_and_tenant_of_the_scenario(tmp_path: Path) -> None:
    head = "name: x\nservices: [stripe]\ntenants: [acme]\nworkflows: [{name: high_volume_read}]\n"
    cases = {
        "outages: [{service: github, at_seconds: 1, duration_seconds: 2}]": "outages[0].service",
        "outages: [{service: stripe, tenant: globex, at_seconds: 1, duration_seconds: 2}]":
            "outages[0].tenant",
        "outages: [{service: stripe, at_seconds: 1, duration_seconds: 2, methods: [BREW]}]":
            "outages[0].methods[0]",
        "outages: [{service: stripe, at_seconds: -1, duration_seconds: 2}]":
            "outages[0].at_seconds",
    }  # fmt: skip
    for line, named in cases.items():
        bad = tmp_path / "bad.yaml"
        bad.write_text(head + line + "\n")
        with pytest.raises(ScenarioError) as info:
            load_scenario(bad)
        assert str(bad) in str(info.value) and named in str(info.value), str(info.value)
    good = tmp_path / "good.yaml"
    good.write_text(head + "outages: [{service: stripe, methods: [POST], at_seconds: 8, "
                    "duration_seconds: 4}]\n")  # fmt: skip
    outage = load_scenario(good).outages[0]
    assert (outage.service, outage.methods, outage.at_seconds) == ("stripe", ["POST"], 8)


@pytest.mark.parametrize("name", ["mild", "storm", "hell"])
def test_the_standard_scenarios_take_a_write_path_down_early(name: str) -> None:
    spec = load_scenario(SCENARIO_DIR / f"{name}.yaml")
    assert spec.duration_seconds == 30
    [outage] = spec.outages  # writes caught in it end in the DLQ, replayed after the run
    assert outage.methods == ["POST"] and outage.at_seconds + outage.duration_seconds < 20
    assert any(w.name == "idempotent_write" for w in spec.workflows)


def test_overrides_are_validated() -> None:
    spec = load_scenario(SCENARIOS[0])
    assert with_overrides(spec, mode="hell", seed=7).mode is Mode.hell
    with pytest.raises(ScenarioError, match="profile"):
        with_overrides(spec, profile="full-bravery")
    with pytest.raises(ScenarioError):
        profiles_from("full")


def test_drift_targets_come_from_the_drift_schedule() -> None:
    assert drift_target(SPECS["salesforce"]) == ("accounts", "account_name")
    assert drift_target(SPECS["github"]) == ("repos", "description")
    assert drift_target(SPECS["netsuite"]) is None


def _card(invariants: int) -> Scorecard:
    return Scorecard(
        run_id="r1",
        scenario="storm",
        mode="storm",
        profile="full",
        seed=42,
        duration_seconds=60,
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:01:00+00:00",
        connectors=[
            ConnectorFigures(
                connector="stripe:acme",
                service="stripe",
                tenant="acme",
                calls=10,
                attempts=12,
                successes=9,
                latency_p99=0.2,
            )
        ],
        invariants=[
            InvariantResult(
                name=f"invariant_{i:03d}_" + "x" * 40,
                status=("fail", "pass", "not_exercised")[i % 3],
                detail="d",
            )
            for i in range(invariants)
        ],
        verdict="FAILED",
    )


def test_termination_summary_has_the_contract_keys_and_fits_4_kib() -> None:
    summary = json.loads(termination_summary(_card(7)))
    assert set(summary) == {
        "verdict",
        "profile",
        "mode",
        "seed",
        "duration_seconds",
        "invariants",
        "failed",
        "not_exercised",
        "goodput_rps",
        "attempts",
        "success_rate",
        "dlq_entries",
        "p99_seconds",
    }
    assert summary["attempts"] == 12 and summary["success_rate"] == 0.9
    # ``invariants`` is name -> status: an untested invariant is never shown as a pass
    names = sorted(summary["invariants"])
    assert [summary["invariants"][n] for n in names[:3]] == ["fail", "pass", "not_exercised"]
    assert summary["failed"] == [n for n in names if summary["invariants"][n] == "fail"]
    assert summary["not_exercised"] == 2  # of 7: indexes 2 and 5
    huge = json.loads(termination_summary(_card(200)))
    assert huge["invariants_left_out"] > 0
    assert set(huge["invariants"].values()) == {"fail"}  # the failed ones are what is kept
    assert huge["not_exercised"] == 66
    assert len(termination_summary(_card(200)).encode()) <= TERMINATION_LOG_LIMIT
    assert huge["verdict"] == "FAILED"


def test_unknown_workflow_parameters_are_config_errors() -> None:
    from workflows.runner import RunOptions, ScenarioRun
    from workflows.scenario import ScenarioSpec

    spec = ScenarioSpec.model_validate(
        {
            "name": "x",
            "services": ["stripe"],
            "workflows": [{"name": "high_volume_read", "params": {"pagez": 3}}],
        }
    )
    run = ScenarioRun(spec, RunOptions(farm_urls={"*": "http://127.0.0.1:9"}, admin_token=None))
    with pytest.raises(ScenarioError, match=r"workflows\[0\]\.params"):
        run._assignments(run._specs())
