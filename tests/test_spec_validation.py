"""Service specs: the preseeded ones are valid; malformed ones are named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from farm.loader import DEFAULT_CONFIG_DIR, load_spec_file, validate_paths
from farm.spec import AuthType, ServiceSpec
from workflows.cli import app

runner = CliRunner()


def _write(tmp_path: Path, text: str, name: str = "svc.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


MINIMAL = """
id: demo
base_path: /demo
rate_limit: {max_rps: 10, burst: 5}
resources:
  - name: items
    endpoints:
      - {method: GET, path: /items, paginated: true}
schema:
  fields:
    items: {id: id, title: text}
"""


def test_preseeded_services_are_valid_and_cover_the_required_behaviours() -> None:
    specs, problems = validate_paths([DEFAULT_CONFIG_DIR])
    assert problems == []
    assert 8 <= len(specs) <= 10
    auth_types = {s.auth.type for s in specs}
    assert {AuthType.oauth2_client_credentials, AuthType.api_key} <= auth_types
    assert any(s.auth.rotate_token_every_calls for s in specs), "rotating tokens"
    assert any(s.auth.token_ttl_seconds <= 60 for s in specs), "short-lived tokens"
    assert any(s.rate_limit.max_rps <= 10 for s in specs), "aggressive rate limit"
    triggers = {
        ("calls" if d.after_calls is not None else "time") for s in specs for d in s.drift_schedule
    }
    assert triggers == {"calls", "time"}
    actions = {d.action.value for s in specs for d in s.drift_schedule}
    assert actions == {"rename", "remove", "add", "retype"}
    assert any(s.error_profile.preset.value == "flaky_5xx" for s in specs)
    assert any(s.network_profile.dns_flakiness or s.network_profile.tls_flakiness for s in specs)
    assert any(len(s.tenants) > 1 and any(t.rate_limit for t in s.tenants) for s in specs)
    posts = [(s, r) for s in specs for r in s.resources for e in r.endpoints if e.method == "POST"]
    assert any(s.idempotency.supported for s, _ in posts)
    assert any(not s.idempotency.supported and r.lookup_field for s, r in posts)
    assert any(e.paginated for s in specs for r in s.resources for e in r.endpoints)


def test_minimal_spec_gets_defaults(tmp_path: Path) -> None:
    spec, problems = load_spec_file(_write(tmp_path, MINIMAL))
    assert problems == []
    assert isinstance(spec, ServiceSpec)
    assert spec.auth.type is AuthType.oauth2_client_credentials
    assert [t.id for t in spec.tenants] == ["default"]
    assert spec.schema_.version == 1


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        (
            ("rate_limit: {max_rps: 10, burst: 5}", "rate_limit: {max_rps: 10, burst: 5, foo: 1}"),
            "rate_limit.foo",
            "unknown field",
        ),
        (
            ("GET, path: /items", "FETCH, path: /items"),
            "resources[0].endpoints[0].method",
            "expected one of",
        ),
        (("id: demo", "id: Demo_Service"), "id", "matching"),
        (("max_rps: 10", "max_rps: -1"), "rate_limit.max_rps", "greater than 0"),
        (("title: text", "title: banana"), "schema.fields.items.title", "matching"),
        (("base_path: /demo", ""), "base_path", "required field is missing"),
    ],
)
def test_malformed_spec_names_field_path_and_expectation(
    tmp_path: Path, change: tuple[str, str], field: str, expected: str
) -> None:
    spec, problems = load_spec_file(_write(tmp_path, MINIMAL.replace(*change)))
    assert spec is None
    assert any(p.field == field and expected in p.message for p in problems), problems
    assert all(p.file.endswith("svc.yaml") for p in problems)


def test_drift_step_must_name_a_field_that_exists_at_that_point(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + """drift_schedule:
  - {after_calls: 10, action: rename, resource: items, field: title, to: name}
  - {after_calls: 20, action: remove, resource: items, field: title}
"""
    )
    spec, problems = load_spec_file(_write(tmp_path, text))
    assert spec is None
    assert "drift_schedule[1]: field 'title' does not exist" in problems[0].message


def test_drift_step_needs_exactly_one_trigger(tmp_path: Path) -> None:
    text = MINIMAL + "drift_schedule:\n  - {action: remove, resource: items, field: title}\n"
    _, problems = load_spec_file(_write(tmp_path, text))
    assert problems[0].field == "drift_schedule[0]"
    assert "exactly one of after_calls or after_seconds" in problems[0].message


def test_yaml_syntax_error_and_duplicate_keys_give_line_numbers(tmp_path: Path) -> None:
    _, problems = load_spec_file(_write(tmp_path, "id: [unclosed\n"))
    assert problems[0].field.startswith("line ") and "invalid YAML" in problems[0].message
    _, problems = load_spec_file(_write(tmp_path, MINIMAL + "id: again\n"))
    assert "duplicate key 'id'" in problems[0].message


def test_non_mapping_document_is_a_clear_error(tmp_path: Path) -> None:
    _, problems = load_spec_file(_write(tmp_path, "- just\n- a list\n"))
    assert problems[0].message == "expected a mapping (a service spec), got a list"
    _, problems = load_spec_file(_write(tmp_path, ""))
    assert "an empty file" in problems[0].message


def test_duplicate_ids_across_files_are_reported(tmp_path: Path) -> None:
    _write(tmp_path, MINIMAL, "a.yaml")
    _write(tmp_path, MINIMAL.replace("/demo", "/other"), "b.yaml")
    specs, problems = validate_paths([tmp_path])
    assert [(Path(p.file).name, p.field) for p in problems] == [("b.yaml", "id")]
    assert len(specs) == 1  # the clashing file is not counted as a valid spec


def test_a_clashing_file_does_not_take_over_the_id(tmp_path: Path) -> None:
    _write(tmp_path, MINIMAL, "a.yaml")
    _write(tmp_path, MINIMAL, "b.yaml")
    _write(tmp_path, MINIMAL, "c.yaml")
    specs, problems = validate_paths([tmp_path])
    assert len(specs) == 1
    assert {p.message for p in problems} == {
        f"'demo' is already used by {tmp_path / 'a.yaml'}",
        f"'/demo' is already used by {tmp_path / 'a.yaml'}",
    }
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 1 and "4 problem(s) in 2 file(s); 1 valid spec(s)." in result.output


def test_validate_cli_exit_codes_and_messages(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["validate", str(DEFAULT_CONFIG_DIR)])
    assert ok.exit_code == 0, ok.output
    assert "9 valid service spec(s)" in ok.output
    bad = _write(tmp_path, MINIMAL.replace("max_rps: 10", "max_rps: fast"))
    result = runner.invoke(app, ["validate", str(bad), str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1
    assert f"{bad}: rate_limit.max_rps:" in result.output
    assert "missing.yaml: no such file or directory" in result.output
    assert "Traceback" not in result.output


#: Seed 001's "Adding a New Service" example, as written, plus the resources it leaves to
#: "# ... rest of config" (schema.fields as seed 000's flat "list of fields").
SEED_001_EXAMPLE = """
id: my_service_mock
protocol: rest
base_path: /api/myservice
auth:
  type: oauth2_client_credentials
rate_limit:
  max_rps: 10
  burst: 20
error_profile: mostly_ok
# ... rest of config
resources:
  - name: orders
    endpoints:
      - {method: GET, path: /orders, paginated: true}
      - {method: POST, path: /orders}
schema:
  version: 1
  fields:
    - {name: id, type: id}
    - {name: customer, type: name}
    - {name: total, type: amount}
"""


def test_the_seeds_own_example_validates_as_written(tmp_path: Path) -> None:
    path = _write(tmp_path, SEED_001_EXAMPLE, "my_service_mock.yaml")
    spec, problems = load_spec_file(path)
    assert problems == [] and spec is not None
    assert spec.id == "my_service_mock" and spec.k8s_name == "my-service-mock"
    assert spec.error_profile.preset.value == "mostly_ok"
    assert spec.schema_.fields == {"orders": {"id": "id", "customer": "name", "total": "amount"}}
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "my_service_mock (Kubernetes name my-service-mock)" in result.output


def test_a_flat_field_list_describes_every_resource_and_a_tenant_takes_a_preset_name(
    tmp_path: Path,
) -> None:
    text = (
        SEED_001_EXAMPLE.replace(
            "      - {method: POST, path: /orders}\n",
            "      - {method: POST, path: /orders}\n  - name: refunds\n"
            "    endpoints: [{method: GET, path: /refunds}]\n",
        )
        + "tenants:\n  - {id: acme, error_profile: flaky_5xx}\n"
    )
    spec, problems = load_spec_file(_write(tmp_path, text))
    assert problems == [] and spec is not None
    assert set(spec.schema_.fields) == {"orders", "refunds"}
    assert spec.error_profile_for("acme").preset.value == "flaky_5xx"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("- {name: total, type: amount}", "- {name: total}"), "schema.fields[2]: expected"),
        (("- {name: total, type: amount}", "- {name: id, type: id}"), "listed twice"),
        (("type: amount}", "type: banana}"), "matching"),
        (("error_profile: mostly_ok", "error_profile: sometimes_ok"), "error_profile.preset"),
        (("id: my_service_mock", "id: _bad_"), "id"),
    ],
)
def test_the_shorthands_still_name_what_is_wrong(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    spec, problems = load_spec_file(_write(tmp_path, SEED_001_EXAMPLE.replace(*change)))
    assert spec is None
    assert any(expected in f"{p.field}: {p.message}" for p in problems), problems


def test_the_annotated_example_in_the_farm_readme_validates() -> None:
    import yaml

    readme = (Path(__file__).resolve().parents[1] / "farm" / "README.md").read_text()
    section = readme.split("## The service spec format")[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    spec = ServiceSpec.model_validate(yaml.safe_load(block))
    assert spec.id == "my_service_mock" and spec.k8s_name == "my-service-mock"
    assert spec.living is not None and spec.dialect.rate_limit_status == 403
