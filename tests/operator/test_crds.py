"""The CRDs: generated from the pydantic models, structural, and doing the validation they can.

No API server can run here, so custom resources are checked against each CRD's openAPIV3Schema
with jsonschema (gauntlet_operator.schema.as_json_schema mirrors the API server's reading).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from gauntlet_operator import crds, names
from gauntlet_operator.schema import (
    SchemaConversionError,
    as_json_schema,
    structural_problems,
    to_structural,
    walk,
)
from gauntlet_operator.validation import validate_scenario, validate_service

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "deploy" / "examples"


def committed_crd(plural: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / "crds" / f"{plural}.yaml").read_text())


def schema_of(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


def validator(plural: str) -> jsonschema.Draft4Validator:
    schema = as_json_schema(schema_of(committed_crd(plural)))
    # The API server validates metadata itself; the CRD may only restrict the name.
    schema["properties"]["metadata"].pop("additionalProperties", None)
    return jsonschema.Draft4Validator(schema)


def error_paths(plural: str, resource: dict[str, Any]) -> list[str]:
    errors = validator(plural).iter_errors(resource)
    return [".".join(str(p) for p in e.absolute_path) for e in errors]


def test_committed_crds_and_examples_match_what_the_models_generate() -> None:
    assert crds.stale_files(REPO) == [], "generated files are stale: run `make crds`"


@pytest.mark.parametrize("plural", [names.SERVICE_PLURAL, names.SCENARIO_PLURAL])
def test_crd_schemas_are_structural(plural: str) -> None:
    schema = schema_of(committed_crd(plural))
    assert structural_problems(schema) == []
    for path, node in walk(schema):
        leftovers = {"$ref", "$defs", "anyOf", "title", "const", "default"} & set(node)
        assert not leftovers, f"{path}: {leftovers}"


def test_service_crd_declares_enums_minimums_columns_and_short_name() -> None:
    crd = committed_crd(names.SERVICE_PLURAL)
    (version,) = crd["spec"]["versions"]
    spec = schema_of(crd)["properties"]["spec"]
    props = spec["properties"]
    assert props["auth"]["properties"]["type"]["enum"] == [
        "oauth2_client_credentials",
        "api_key",
        "none",
    ]
    drift_action = props["drift_schedule"]["items"]["properties"]["action"]
    assert drift_action["enum"] == ["rename", "remove", "add", "retype"]
    assert props["rate_limit"]["properties"]["max_rps"] == {
        "type": "number",
        "description": "token-bucket refill rate per tenant",
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 100_000,
    }
    assert props["replicas"]["minimum"] == 0
    # Farm state (tokens, buckets, ledger) is per pod: 0 or 1, and the rejection says why.
    assert props["replicas"]["maximum"] == 1
    (rule,) = props["replicas"]["x-kubernetes-validations"]
    assert rule["rule"] == "self <= 1" and "per pod" in rule["message"]
    assert set(spec["required"]) >= {"id", "base_path", "rate_limit", "resources", "schema"}
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Auth"] == ".status.authType"
    assert columns["RPS"] == ".status.rateLimitRps"
    assert columns["Schema"] == ".status.schemaVersion"
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    assert crd["spec"]["names"]["shortNames"] == ["synsvc"]


def test_scenario_crd_has_no_name_in_spec_and_shows_mode_phase_verdict_age() -> None:
    crd = committed_crd(names.SCENARIO_PLURAL)
    (version,) = crd["spec"]["versions"]
    spec = schema_of(crd)["properties"]["spec"]
    assert "name" not in spec["properties"] and "name" not in spec.get("required", [])
    assert spec["properties"]["mode"]["enum"] == ["calm", "mild", "storm", "hell"]
    columns = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert columns == ["Mode", "Phase", "Verdict", "Age"]
    status = schema_of(crd)["properties"]["status"]["properties"]
    assert status["phase"]["enum"] == ["Pending", "Queued", "Running", "Passed", "Failed", "Error"]
    assert {"farms", "queuedBehind"} <= set(status)
    assert crd["spec"]["names"]["shortNames"] == ["gsc"]


def examples(kind_dir: str) -> list[Path]:
    return sorted(p for p in (EXAMPLES / kind_dir).glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("path", examples("services"), ids=lambda p: p.stem)
def test_every_example_service_passes_the_crd_schema_and_the_model(path: Path) -> None:
    resource = yaml.safe_load(path.read_text())
    assert error_paths(names.SERVICE_PLURAL, resource) == []
    model, problems = validate_service(resource["spec"])
    assert problems == [] and model is not None and model.id == resource["metadata"]["name"]


@pytest.mark.parametrize("path", examples("scenarios"), ids=lambda p: p.stem)
def test_every_example_scenario_passes_the_crd_schema_and_the_model(path: Path) -> None:
    resource = yaml.safe_load(path.read_text())
    assert error_paths(names.SCENARIO_PLURAL, resource) == []
    model, problems = validate_scenario(resource["metadata"]["name"], resource["spec"])
    assert problems == [] and model is not None and model.mode.value == path.stem


def _set(resource: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    bad = copy.deepcopy(resource)
    *parents, last = dotted.split(".")
    node: Any = bad
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return bad


_DELETE = object()
STRIPE = yaml.safe_load((EXAMPLES / "services" / "stripe.yaml").read_text())
STORM = yaml.safe_load((EXAMPLES / "scenarios" / "storm.yaml").read_text())


@pytest.mark.parametrize(
    ("field", "value", "expected_path"),
    [
        ("spec.auth.type", "basic", "spec.auth.type"),
        ("spec.rate_limit.max_rps", 0, "spec.rate_limit.max_rps"),
        ("spec.rate_limit", _DELETE, "spec"),
        ("spec.replicas", -1, "spec.replicas"),
        ("spec.replicas", 2, "spec.replicas"),
        ("spec.protocol", "grpc", "spec.protocol"),
        ("spec.resources.0.endpoints.0.method", "DELETE", "spec.resources.0.endpoints.0.method"),
        ("spec.network_profile", {"dns_flakiness": 1.5}, "spec.network_profile.dns_flakiness"),
        ("spec.base_path", "no-leading-slash", "spec.base_path"),
        ("spec.surprise", True, "spec"),
        ("metadata.name", "Not_A_DNS_Label", "metadata.name"),
    ],
)
def test_malformed_services_fail_the_schema_at_the_field(
    field: str, value: Any, expected_path: str
) -> None:
    paths = error_paths(names.SERVICE_PLURAL, _set(STRIPE, field, value))
    assert expected_path in paths


def test_malformed_drift_step_fails_the_schema_at_the_field() -> None:
    bad = copy.deepcopy(STRIPE)
    bad["spec"]["drift_schedule"] = [
        {"after_calls": 1, "action": "explode", "resource": "invoices", "field": "amount"}
    ]
    assert "spec.drift_schedule.0.action" in error_paths(names.SERVICE_PLURAL, bad)


@pytest.mark.parametrize(
    ("field", "value", "expected_path"),
    [
        ("spec.mode", "apocalypse", "spec.mode"),
        ("spec.duration_seconds", 0, "spec.duration_seconds"),
        ("spec.services", [], "spec.services"),
        ("spec.workflows.0.concurrency", 0, "spec.workflows.0.concurrency"),
        ("spec.profile", {"base": "full", "disable": ["magic"]}, "spec.profile.disable.0"),
        ("spec.thresholds", {"max_dlq_entries": -1}, "spec.thresholds.max_dlq_entries"),
        ("spec.name", "storm", "spec"),
        ("spec.workflows", _DELETE, "spec"),
    ],
)
def test_malformed_scenarios_fail_the_schema_at_the_field(
    field: str, value: Any, expected_path: str
) -> None:
    paths = error_paths(names.SCENARIO_PLURAL, _set(STORM, field, value))
    assert expected_path in paths


def test_optional_fields_accept_null_and_free_form_params_are_kept() -> None:
    ok = copy.deepcopy(STORM)
    ok["spec"]["tenants"] = None
    ok["spec"]["workflows"][0]["params"] = {"page_limit": 3, "tag": "x", "strict": True}
    assert error_paths(names.SCENARIO_PLURAL, ok) == []


def test_conversion_inlines_refs_and_maps_optional_const_and_exclusive_bounds() -> None:
    schema = {
        "$defs": {"Color": {"enum": ["red", "blue"], "type": "string", "title": "Color"}},
        "type": "object",
        "title": "Thing",
        "additionalProperties": False,
        "properties": {
            "color": {"$ref": "#/$defs/Color", "default": "red", "description": "hue"},
            "maybe": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]},
            "kind": {"const": "rest"},
            "rate": {"type": "number", "exclusiveMinimum": 0},
            "either": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "required": ["color"],
    }
    out = to_structural(schema)
    assert out["properties"]["color"] == {
        "enum": ["red", "blue"],
        "type": "string",
        "description": "hue",
    }
    assert out["properties"]["maybe"] == {"type": "integer", "minimum": 1, "nullable": True}
    assert out["properties"]["kind"] == {"enum": ["rest"], "type": "string"}
    assert out["properties"]["rate"] == {"type": "number", "minimum": 0, "exclusiveMinimum": True}
    assert out["properties"]["either"] == {"x-kubernetes-int-or-string": True}
    assert out["properties"]["labels"]["additionalProperties"] == {"type": "string"}
    assert "additionalProperties" not in out and "title" not in out
    assert structural_problems(out) == []


def test_conversion_refuses_what_it_cannot_translate() -> None:
    with pytest.raises(SchemaConversionError, match="uniqueItems"):
        to_structural({"type": "array", "items": {"type": "string"}, "uniqueItems": True})


def test_structural_check_finds_untyped_nodes_and_leftover_refs() -> None:
    bad = {
        "type": "object",
        "properties": {"a": {"description": "no type"}, "b": {"$ref": "#/x", "type": "object"}},
    }
    problems = structural_problems(bad)
    assert ".a: no type" in problems and ".b: $ref is not allowed" in problems
    assert [path for path, _ in walk(bad)] == ["", ".a", ".b"]


@pytest.mark.parametrize("plural", [names.SERVICE_PLURAL, names.SCENARIO_PLURAL])
def test_every_pattern_is_one_the_api_server_can_run(plural: str) -> None:
    """The API server evaluates patterns with Go's RE2: no lookaround, no backreferences."""
    import re

    patterns = [
        node["pattern"] for _, node in walk(schema_of(committed_crd(plural))) if "pattern" in node
    ]
    assert patterns
    for pattern in patterns:
        re.compile(pattern)
        assert not re.search(r"\(\?[=!<]|\\[1-9]", pattern), pattern


@pytest.mark.parametrize("replicas", [2, 10])
def test_two_or_more_farm_replicas_are_refused_with_the_reason(replicas: int) -> None:
    spec = {**copy.deepcopy(STRIPE["spec"]), "replicas": replicas}
    model, problems = validate_service(spec)
    assert model is None
    (problem,) = problems
    assert problem.startswith(f"spec.replicas: {replicas} replicas: at most 1 farm pod")
    assert "tokens, rate-limit buckets and the ledger are per pod" in problem
    for ok in (0, 1):
        assert validate_service({**spec, "replicas": ok})[1] == []


def test_a_model_check_that_names_its_field_reports_the_full_path() -> None:
    bad = copy.deepcopy(STRIPE["spec"])
    bad["drift_schedule"] = [
        {"after_calls": 5, "action": "remove", "resource": "invoices", "field": "nope"}
    ]
    (problem,) = validate_service(bad)[1]
    assert problem.startswith("spec.drift_schedule[0]: field 'nope' does not exist")
