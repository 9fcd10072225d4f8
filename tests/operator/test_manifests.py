"""The pure manifest builders: what the operator creates, checked without any API server.

Every built manifest is also validated with kubernetes-validate (strict: unknown fields fail)
against the schemas of a current Kubernetes release.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from gauntlet_operator import manifests, names
from gauntlet_operator.validation import farm_config, scenario_document, validate_service

#: The oldest Kubernetes the manifests target and the newest schemas kubernetes-validate has.
K8S_VERSIONS = ("1.30", kubernetes_validate.latest_version())
REPO = Path(__file__).resolve().parents[2]
STRIPE = yaml.safe_load((REPO / "deploy" / "examples" / "services" / "stripe.yaml").read_text())
OWNER = {
    "apiVersion": names.API_VERSION,
    "kind": names.SERVICE_KIND,
    "metadata": {"name": "stripe", "namespace": "ns", "uid": "1234-abcd"},
}
PODS = manifests.PodSettings(image="aam-gauntlet:1.0", pushgateway_url="http://pg:9091")


def farm(spec: dict[str, Any] | None = None) -> tuple[dict[str, Any], ...]:
    spec = spec or STRIPE["spec"]
    model, problems = validate_service(spec)
    assert model is not None, problems
    configmap = manifests.farm_configmap("stripe", "ns", farm_config(spec), OWNER)
    deployment = manifests.farm_deployment("stripe", "ns", 2, configmap, OWNER, PODS)
    service = manifests.farm_service("stripe", "ns", OWNER)
    return configmap, deployment, service


def runner_job(generation: int = 3) -> dict[str, Any]:
    return manifests.runner_job(
        "storm",
        "ns",
        generation,
        60,
        {"stripe": names.farm_url("stripe", "ns"), "github": names.farm_url("github", "ns")},
        [names.farm_name("stripe"), names.farm_name("github")],
        {**OWNER, "kind": names.SCENARIO_KIND, "metadata": {"name": "storm", "uid": "u-1"}},
        PODS,
    )


def container(manifest: dict[str, Any]) -> dict[str, Any]:
    (only,) = manifest["spec"]["template"]["spec"]["containers"]
    return only


def test_every_built_manifest_is_valid_kubernetes() -> None:
    configmap, deployment, service = farm()
    job = runner_job()
    built = [configmap, deployment, service, job, manifests.admin_token_secret("ns")]
    built.append(manifests.scenario_configmap("storm", "ns", 3, {"name": "storm"}, job_like(job)))
    for manifest in built:
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(manifest, version, strict=True)


def job_like(job: dict[str, Any]) -> dict[str, Any]:
    return {**job, "metadata": {**job["metadata"], "uid": "job-uid"}}


def test_farm_children_are_owned_by_the_synthetic_service() -> None:
    for child in farm():
        (ref,) = child["metadata"]["ownerReferences"]
        assert ref == {
            "apiVersion": names.API_VERSION,
            "kind": names.SERVICE_KIND,
            "name": "stripe",
            "uid": "1234-abcd",
            "controller": True,
            "blockOwnerDeletion": True,
        }


def test_farm_pod_is_non_root_read_only_probed_and_bounded() -> None:
    _, deployment, _ = farm()
    pod = deployment["spec"]["template"]["spec"]
    farm_container = container(deployment)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert farm_container["securityContext"]["readOnlyRootFilesystem"] is True
    assert farm_container["securityContext"]["allowPrivilegeEscalation"] is False
    assert farm_container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert farm_container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert set(farm_container["resources"]) == {"requests", "limits"}
    # The farm writes its state dir: that must be an emptyDir, the root filesystem is read-only.
    state_dir = farm_container["command"][farm_container["command"].index("--state-dir") + 1]
    mounts = {m["mountPath"]: m["name"] for m in farm_container["volumeMounts"]}
    writable = next(path for path in mounts if state_dir.startswith(path))
    volume = next(v for v in pod["volumes"] if v["name"] == mounts[writable])
    assert "emptyDir" in volume
    env = {e["name"]: e for e in farm_container["env"]}
    assert env["GAUNTLET_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == (
        names.ADMIN_TOKEN_SECRET
    )
    assert farm_container["image"] == "aam-gauntlet:1.0"


def test_farm_serves_the_configmap_spec_on_port_8001_with_scrape_annotations() -> None:
    configmap, deployment, service = farm()
    farm_container = container(deployment)
    command = farm_container["command"]
    assert command[:3] == ["gauntlet", "farm", "serve"]
    configs = command[command.index("--configs") + 1]
    assert command[command.index("--port") + 1] == "8001"
    mount = next(m for m in farm_container["volumeMounts"] if m["mountPath"] == configs)
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    volume = next(v for v in volumes if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    assert list(configmap["data"]) == ["stripe.yaml"]
    assert yaml.safe_load(configmap["data"]["stripe.yaml"]) == {
        k: v for k, v in STRIPE["spec"].items() if k != "replicas"
    }
    assert service["spec"]["ports"][0]["port"] == 8001
    assert service["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    selector = service["spec"]["selector"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert deployment["spec"]["selector"]["matchLabels"] == selector


def test_a_spec_change_changes_the_pod_template_and_nothing_else_does() -> None:
    def template_hash(spec: dict[str, Any]) -> str:
        _, deployment, _ = farm(spec)
        return deployment["spec"]["template"]["metadata"]["annotations"][names.ANNOTATION_SPEC_HASH]

    same = template_hash(STRIPE["spec"])
    assert template_hash(dict(STRIPE["spec"])) == same
    changed = {**STRIPE["spec"], "rate_limit": {"max_rps": 1, "burst": 1}}
    assert template_hash(changed) != same
    # replicas is not part of the farm's spec file: scaling does not restart the pods.
    assert template_hash({**STRIPE["spec"], "replicas": 0}) == same


def test_runner_job_runs_the_contract_command_line_once() -> None:
    job = runner_job()
    runner = container(job)
    command = runner["command"]
    assert command[:3] == ["gauntlet", "run", "/etc/gauntlet/scenario/scenario.yaml"]
    urls = [command[i + 1] for i, arg in enumerate(command) if arg == "--service-url"]
    assert urls == [
        "github=http://synsvc-github.ns.svc:8001",
        "stripe=http://synsvc-stripe.ns.svc:8001",
    ]
    assert command[command.index("--termination-log") + 1] == "/dev/termination-log"
    assert command[command.index("--json") + 1] == "/tmp/scorecard.json"
    assert command[-1] == "--wait"  # a lease left by a killed runner is waited out
    assert runner["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["activeDeadlineSeconds"] > 60
    env = {e["name"]: e for e in runner["env"]}
    assert "secretKeyRef" in env["GAUNTLET_ADMIN_TOKEN"]["valueFrom"]
    assert env["GAUNTLET_PUSHGATEWAY_URL"]["value"] == "http://pg:9091"
    projected = next(
        v for v in job["spec"]["template"]["spec"]["volumes"] if v["name"] == "services"
    )
    sources = [s["configMap"]["name"] for s in projected["projected"]["sources"]]
    assert sources == ["synsvc-github", "synsvc-stripe"]


def test_job_names_are_deterministic_per_generation_and_label_safe() -> None:
    assert names.runner_job_name("storm", 3) == names.runner_job_name("storm", 3) == "gsc-storm-g3"
    assert names.runner_job_name("storm", 4) != names.runner_job_name("storm", 3)
    long_a, long_b = "a" * 63, "a" * 62 + "b"
    for name in (long_a, long_b):
        job_name = names.runner_job_name(name, 12345)
        assert len(job_name) <= 63 and job_name.endswith("-g12345")
    assert names.runner_job_name(long_a, 1) != names.runner_job_name(long_b, 1)


def test_scenario_configmap_is_owned_by_its_job_and_holds_the_runner_document() -> None:
    job = job_like(runner_job())
    document = scenario_document("storm", {"mode": "storm", "services": ["stripe"]})
    configmap = manifests.scenario_configmap("storm", "ns", 3, document, job)
    assert configmap["metadata"]["name"] == job["metadata"]["name"]
    assert configmap["metadata"]["ownerReferences"][0]["uid"] == "job-uid"
    assert yaml.safe_load(configmap["data"]["scenario.yaml"]) == {
        "name": "storm",
        "mode": "storm",
        "services": ["stripe"],
    }


def test_admin_token_is_random_per_secret() -> None:
    first = manifests.admin_token_secret("ns")["stringData"][names.ADMIN_TOKEN_KEY]
    second = manifests.admin_token_secret("ns")["stringData"][names.ADMIN_TOKEN_KEY]
    assert first != second and len(first) >= 32


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, manifests.PodSettings()),
        (
            {"GAUNTLET_IMAGE": "reg/x:1", "GAUNTLET_IMAGE_PULL_POLICY": "Always"},
            manifests.PodSettings(image="reg/x:1", pull_policy="Always"),
        ),
    ],
)
def test_pod_settings_come_from_the_environment(
    env: dict[str, str], expected: manifests.PodSettings
) -> None:
    assert manifests.PodSettings.from_env(env) == expected


def test_no_pod_mounts_a_volume_inside_a_configmap_volume() -> None:
    """The kubelet cannot create a mount point inside a read-only ConfigMap volume."""
    _, deployment, _ = farm()
    for workload in (deployment, runner_job()):
        pod = workload["spec"]["template"]["spec"]
        read_only = {v["name"] for v in pod["volumes"] if "configMap" in v or "projected" in v}
        mounts = container(workload)["volumeMounts"]
        for outer in (m for m in mounts if m["name"] in read_only):
            for inner in mounts:
                assert not inner["mountPath"].startswith(outer["mountPath"] + "/")


def test_an_external_aam_token_comes_from_its_secret_and_never_as_a_value() -> None:
    plain = {e["name"] for e in container(runner_job())["env"]}
    assert "GAUNTLET_AAM_TOKEN" not in plain
    job = manifests.runner_job(
        "storm",
        "ns",
        3,
        60,
        {"stripe": names.farm_url("stripe", "ns")},
        [names.farm_name("stripe")],
        {**OWNER, "kind": names.SCENARIO_KIND, "metadata": {"name": "storm", "uid": "u-1"}},
        PODS,
        aam_token_secret=("my-aam", "token"),
    )
    env = {e["name"]: e for e in container(job)["env"]}
    ref = env["GAUNTLET_AAM_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "my-aam", "key": "token"}
    assert "value" not in env["GAUNTLET_AAM_TOKEN"]


def test_a_scenario_names_its_external_aam_and_the_secret_of_its_token() -> None:
    from pydantic import ValidationError

    from workflows.scenario import ScenarioSpec

    base = {"name": "s", "services": ["stripe"], "workflows": [{"name": "high_volume_read"}]}
    spec = ScenarioSpec.model_validate(
        {
            **base,
            "aam": {
                "url": "http://my-aam.team.svc:8003",
                "tokenSecretRef": {"name": "my-aam", "key": "token"},
            },
        }
    )
    assert spec.aam is not None and spec.aam.token_secret_ref is not None
    assert spec.aam.token_secret_ref.name == "my-aam"
    with pytest.raises(ValidationError):
        ScenarioSpec.model_validate({**base, "aam": {"url": "ftp://x"}})
