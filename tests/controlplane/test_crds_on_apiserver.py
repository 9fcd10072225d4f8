"""The CRDs and manifests on a real kube-apiserver: applied server-side, Established, the
examples accepted, malformed resources rejected by the server with the field path, and the
printer columns the README shows.

(tests/operator/test_crds.py checks the same with jsonschema offline; this is the server's say.)
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import CRD_NAMES, OPERATOR_NAMESPACE, Applied
from cp_cluster import REPO, ControlPlane
from gauntlet_operator import names
from gauntlet_operator.kube import KubeApi

EXAMPLES = REPO / "deploy" / "examples"
STRIPE = yaml.safe_load((EXAMPLES / "services" / "stripe.yaml").read_text())
STORM = yaml.safe_load((EXAMPLES / "scenarios" / "storm.yaml").read_text())
_DELETE = object()


def examples(kind_dir: str) -> list[Path]:
    return sorted(p for p in (EXAMPLES / kind_dir).glob("*.yaml") if p.name != "kustomization.yaml")


def with_field(resource: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
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


def server_dry_run(
    control_plane: ControlPlane, resource: dict[str, Any], namespace: str = "default"
) -> tuple[int, str]:
    """`kubectl apply --server-side --dry-run=server`: the server validates, stores nothing."""
    result = control_plane.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        "-",
        stdin=yaml.safe_dump(resource),
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def test_crds_apply_server_side_and_are_established(
    applied: Applied, control_plane: ControlPlane
) -> None:
    api = control_plane.api()
    for name in CRD_NAMES:
        assert f"customresourcedefinition.apiextensions.k8s.io/{name} serverside-applied" in (
            applied.crds.stdout
        )
        crd = api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions["Established"] == "True" and conditions["NamesAccepted"] == "True"
        # Structural: the server found nothing to complain about (no NonStructuralSchema).
        assert "NonStructuralSchema" not in conditions


def test_deploy_kind_applies_server_side(applied: Applied, control_plane: ControlPlane) -> None:
    """Everything `make kind-up` applies: the server accepts every object as written."""
    built = yaml.safe_load_all(
        control_plane.kubectl(
            "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(REPO / "deploy/kind")
        ).stdout
    )
    objects = [o for o in built if o]
    assert len(objects) > 20
    api = control_plane.api()
    for obj in objects:
        kind, meta = obj["kind"], obj["metadata"]
        assert f"{meta['name']} serverside-applied" in applied.deploy.stdout, (kind, meta)
    # Namespace gauntlet warns at "restricted": the server checked every pod template.
    assert "would violate PodSecurity" not in applied.deploy.stderr, applied.deploy.stderr
    assert "Warning" not in applied.deploy.stderr, applied.deploy.stderr
    operator = api.get(
        f"/apis/apps/v1/namespaces/{OPERATOR_NAMESPACE}/deployments/gauntlet-operator"
    )
    assert operator["spec"]["template"]["spec"]["serviceAccountName"] == "gauntlet-operator"
    services = api.list(
        f"/apis/{names.API_VERSION}/namespaces/{OPERATOR_NAMESPACE}/{names.SERVICE_PLURAL}"
    )
    assert sorted(s["metadata"]["name"] for s in services) == sorted(
        p.stem for p in examples("services")
    )


@pytest.mark.parametrize("path", examples("scenarios"), ids=lambda p: p.stem)
def test_every_example_scenario_is_accepted(
    path: Path, applied: Applied, control_plane: ControlPlane
) -> None:
    code, output = server_dry_run(control_plane, yaml.safe_load(path.read_text()))
    assert code == 0, output


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("spec.auth.type", "basic", 'spec.auth.type: Unsupported value: "basic"'),
        ("spec.rate_limit.max_rps", 0, "spec.rate_limit.max_rps: Invalid value: 0"),
        ("spec.rate_limit", _DELETE, "spec.rate_limit: Required value"),
        ("spec.replicas", -1, "spec.replicas: Invalid value: -1"),
        ("spec.replicas", 2, "spec.replicas: Invalid value: 2"),
        ("spec.protocol", "grpc", 'spec.protocol: Unsupported value: "grpc"'),
        (
            "spec.resources.0.endpoints.0.method",
            "DELETE",
            'spec.resources[0].endpoints[0].method: Unsupported value: "DELETE"',
        ),
        (
            "spec.network_profile",
            {"dns_flakiness": 1.5},
            "spec.network_profile.dns_flakiness: Invalid value: 1.5",
        ),
        ("spec.base_path", "no-leading-slash", "spec.base_path: Invalid value"),
        ("spec.surprise", True, ".spec.surprise: field not declared in schema"),
        ("metadata.name", "Not_A_DNS_Label", 'metadata.name: Invalid value: "Not_A_DNS_Label"'),
    ],
)
def test_malformed_services_are_rejected_by_the_server_at_the_field(
    field: str, value: Any, expected: str, applied: Applied, control_plane: ControlPlane
) -> None:
    code, output = server_dry_run(control_plane, with_field(STRIPE, field, value))
    assert code != 0 and expected in output, output


def test_two_farm_replicas_are_rejected_by_the_server_saying_why(
    applied: Applied, control_plane: ControlPlane
) -> None:
    code, output = server_dry_run(control_plane, with_field(STRIPE, "spec.replicas", 2))
    assert code != 0
    assert "spec.replicas: Invalid value: 2" in output
    assert "tokens, rate-limit buckets and the ledger are per pod" in output, output
    for ok in (0, 1):
        code, output = server_dry_run(control_plane, with_field(STRIPE, "spec.replicas", ok))
        assert code == 0, output


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("spec.mode", "apocalypse", 'spec.mode: Unsupported value: "apocalypse"'),
        ("spec.duration_seconds", 0, "spec.duration_seconds: Invalid value: 0"),
        ("spec.services", [], "spec.services: Invalid value: 0"),
        ("spec.workflows.0.concurrency", 0, "spec.workflows[0].concurrency: Invalid value: 0"),
        (
            "spec.profile",
            {"base": "full", "disable": ["magic"]},
            'spec.profile.disable[0]: Unsupported value: "magic"',
        ),
        (
            "spec.thresholds",
            {"max_dlq_entries": -1},
            "spec.thresholds.max_dlq_entries: Invalid value: -1",
        ),
        ("spec.name", "storm", ".spec.name: field not declared in schema"),
        ("spec.workflows", _DELETE, "spec.workflows: Required value"),
    ],
)
def test_malformed_scenarios_are_rejected_by_the_server_at_the_field(
    field: str, value: Any, expected: str, applied: Applied, control_plane: ControlPlane
) -> None:
    code, output = server_dry_run(control_plane, with_field(STORM, field, value))
    assert code != 0 and expected in output, output


def test_status_is_a_subresource_the_main_resource_cannot_write(
    applied: Applied, control_plane: ControlPlane
) -> None:
    """A spec write carrying status: the server drops the status (only /status writes it)."""
    api: KubeApi = control_plane.api()
    path = f"/apis/{names.API_VERSION}/namespaces/default/{names.SCENARIO_PLURAL}"
    body = {**copy.deepcopy(STORM), "status": {"phase": "Passed"}}
    body["metadata"] = {"name": "status-probe"}
    created = api.create(path, body)
    try:
        assert "status" not in created or created["status"].get("phase") != "Passed"
    finally:
        api.delete(f"{path}/status-probe")


def test_printer_columns_are_the_ones_the_readme_shows(
    applied: Applied, control_plane: ControlPlane
) -> None:
    services = control_plane.kubectl("get", "synsvc", "-n", OPERATOR_NAMESPACE).stdout
    assert services.splitlines()[0].split() == [
        "NAME",
        "SERVICE",
        "AUTH",
        "RPS",
        "SCHEMA",
        "READY",
        "AGE",
    ]
    readme = (REPO / "README.md").read_text()
    assert "kubectl get gsc -w" in readme and "MODE, PHASE" in readme
    control_plane.kubectl(
        "apply", "--server-side", "-n", "default", "-f", str(EXAMPLES / "scenarios" / "mild.yaml")
    )
    try:
        scenarios = control_plane.kubectl("get", "gsc", "-n", "default").stdout
        assert scenarios.splitlines()[0].split() == ["NAME", "MODE", "PHASE", "VERDICT", "AGE"]
        # -o wide adds the priority-1 columns, in the CRD's order.
        crd = control_plane.api().get(
            f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD_NAMES[1]}"
        )
        (version,) = crd["spec"]["versions"]
        columns = [c["name"].upper() for c in version["additionalPrinterColumns"]]
        wide = control_plane.kubectl("get", "gsc", "-n", "default", "-o", "wide").stdout
        assert wide.splitlines()[0].split() == ["NAME", *columns]
        assert {"GOODPUT", "JOB"} <= set(columns)
    finally:
        control_plane.kubectl("delete", "gsc", "mild", "-n", "default", "--wait=false")
