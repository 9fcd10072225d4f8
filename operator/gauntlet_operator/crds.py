"""CustomResourceDefinitions and example resources, generated from the pydantic models.

``gauntlet crds`` (``make crds``) writes :func:`render_all` to disk; a test fails when the
committed files differ from what the models generate, so the CRDs, the examples and the models
cannot drift apart.

Decisions (documented in crds/README.md):

- ``SyntheticService.spec`` is :class:`farm.spec.ServiceSpec` plus ``replicas``.
- ``GauntletScenario.spec`` is :class:`workflows.scenario.ScenarioSpec` minus ``name``: the
  scenario's name is ``metadata.name`` (a DNS label, at most 63 characters, like ``name``).
- No ``default`` in the CRDs: defaults live in the models only (one source of truth); the
  operator reports the effective values in ``status`` (auth type, rate, mode) for the columns.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, field_validator

from farm.loader import DEFAULT_CONFIG_DIR
from farm.spec import DNS_LABEL, ServiceSpec
from gauntlet_operator import names
from gauntlet_operator.schema import Schema, to_structural
from gauntlet_operator.status import ScenarioStatus, ServiceStatus
from workflows.scenario import ScenarioSpec

#: The standard scenarios published as GauntletScenario examples (workflows/scenarios/<mode>.yaml).
EXAMPLE_SCENARIOS = ("mild", "storm", "hell")
SCENARIO_DIR = Path(__file__).resolve().parents[2] / "workflows" / "scenarios"

REPO = Path(__file__).resolve().parents[2]
#: Longest SyntheticService name: its children are named ``synsvc-<name>`` (a 63-char DNS label).
MAX_SERVICE_NAME = 63 - len("synsvc-")


#: Farm pods per SyntheticService. Tokens, rate-limit buckets and the ledger live in each farm
#: process, so until that state is shared a second pod would give wrong verdicts.
MAX_FARM_REPLICAS = 1
REPLICAS_WHY = (
    "at most 1 farm pod until farm state is shared between pods: tokens, rate-limit buckets "
    "and the ledger are per pod, so with 2+ pods tokens fail across pods and the runner reads "
    "one pod's ledger (wrong verdicts)"
)


class SyntheticServiceSpec(ServiceSpec):
    """``SyntheticService.spec``: a farm service spec plus how many farm replicas to run."""

    replicas: int = Field(
        default=1,
        ge=0,
        le=MAX_FARM_REPLICAS,
        description=f"farm pods serving this service: 0 or 1 ({REPLICAS_WHY})",
        # The API server's own rejection says why, too (a CEL rule with a message).
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": f"self <= {MAX_FARM_REPLICAS}", "message": REPLICAS_WHY}
            ]
        },
    )

    @field_validator("replicas", mode="before")
    @classmethod
    def _one_farm_pod(cls, value: Any) -> Any:
        """Reject 2+ with the reason (before ``le``, whose message would not say why)."""
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_FARM_REPLICAS:
            raise ValueError(f"{value} replicas: {REPLICAS_WHY}")
        return value


def service_spec_schema() -> Schema:
    """Structural schema of ``SyntheticService.spec``."""
    return to_structural(SyntheticServiceSpec.model_json_schema(by_alias=True))


def scenario_spec_schema() -> Schema:
    """Structural schema of ``GauntletScenario.spec`` (ScenarioSpec without ``name``)."""
    schema = to_structural(ScenarioSpec.model_json_schema(by_alias=True))
    schema["properties"].pop("name")
    schema["required"] = [r for r in schema.get("required", []) if r != "name"]
    return schema


def _status_schema(model: type[ServiceStatus] | type[ScenarioStatus]) -> Schema:
    schema = to_structural(model.model_json_schema())
    schema["description"] = "Written by the operator."
    return schema


def _root_schema(spec: Schema, status: Schema, name_max: int, description: str) -> Schema:
    return {
        "type": "object",
        "description": description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            # Structural schemas may restrict only metadata.name/generateName.
            "metadata": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "pattern": DNS_LABEL, "maxLength": name_max}
                },
            },
            "spec": spec,
            "status": status,
        },
    }


def _column(name: str, path: str, type_: str = "string", priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": type_, "jsonPath": path}
    if priority:
        column["priority"] = priority
    return column


_READY = '.status.conditions[?(@.type=="Ready")].status'
_AGE = _column("Age", ".metadata.creationTimestamp", "date")


def _crd(
    kind: str,
    plural: str,
    short: str,
    schema: Schema,
    columns: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{names.GROUP}",
            "labels": {"app.kubernetes.io/part-of": "aam-gauntlet"},
        },
        "spec": {
            "group": names.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["gauntlet"],
            },
            "versions": [
                {
                    "name": names.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def service_crd() -> dict[str, Any]:
    """The SyntheticService CRD (short name ``synsvc``)."""
    schema = _root_schema(
        service_spec_schema(),
        _status_schema(ServiceStatus),
        MAX_SERVICE_NAME,
        "A synthetic third-party API served by the farm (one Deployment per resource).",
    )
    columns = [
        _column("Service", ".status.serviceId"),
        _column("Auth", ".status.authType"),
        _column("RPS", ".status.rateLimitRps", "number"),
        _column("Schema", ".status.schemaVersion", "integer"),
        _column("Ready", _READY),
        _column("Replicas", ".status.readyReplicas", "integer", priority=1),
        _column("Endpoint", ".status.endpoint", priority=1),
        _AGE,
    ]
    return _crd(names.SERVICE_KIND, names.SERVICE_PLURAL, "synsvc", schema, columns)


def scenario_crd() -> dict[str, Any]:
    """The GauntletScenario CRD (short name ``gsc``)."""
    schema = _root_schema(
        scenario_spec_schema(),
        _status_schema(ScenarioStatus),
        63,
        "A chaos scenario run through the AAM by a Job; the verdict lands in status.",
    )
    columns = [
        _column("Mode", ".status.mode"),
        _column("Phase", ".status.phase"),
        _column("Verdict", ".status.verdict"),
        _column("Goodput", ".status.scorecard.goodputRps", "number", priority=1),
        _column("Job", ".status.jobName", priority=1),
        _AGE,
    ]
    return _crd(names.SCENARIO_KIND, names.SCENARIO_PLURAL, "gsc", schema, columns)


def dump_yaml(document: Any, header: str = "") -> str:
    """Stable YAML text (insertion order, no aliases, wide lines) with an optional comment."""

    class _NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    body = yaml.dump(
        document, Dumper=_NoAliases, sort_keys=False, default_flow_style=False, width=100
    )
    return (header + body) if header else body


def service_example(config: Path) -> tuple[str, dict[str, Any]]:
    """A SyntheticService made from one farm config file: ``(service id, resource)``."""
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    spec = ServiceSpec.model_validate(data)  # the same check the farm makes
    resource = {
        "apiVersion": names.API_VERSION,
        "kind": names.SERVICE_KIND,
        "metadata": {
            "name": spec.k8s_name,
            "labels": {"app.kubernetes.io/part-of": "aam-gauntlet"},
        },
        "spec": {**data, "replicas": 1},
    }
    return spec.id, resource


def scenario_example(path: Path) -> dict[str, Any]:
    """A GauntletScenario made from a runner scenario file: ``name`` becomes metadata.name."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    scenario = ScenarioSpec.model_validate(data)  # the same check the runner makes
    resource = {
        "apiVersion": names.API_VERSION,
        "kind": names.SCENARIO_KIND,
        "metadata": {
            "name": scenario.name,
            "labels": {"app.kubernetes.io/part-of": "aam-gauntlet"},
        },
        "spec": {k: v for k, v in data.items() if k != "name"},
    }
    return resource


def _kustomization(resources: list[str], header: str) -> str:
    return dump_yaml(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": resources,
        },
        header,
    )


def monitoring_kustomization(root: Path, header: str) -> str:
    """deploy/kind/monitoring's kustomization: ConfigMaps over whatever dashboards, Grafana
    provisioning files and recording rules the repository holds (kustomize has no globs)."""
    up = "../../.."  # deploy/kind/monitoring -> repository root

    def files(folder: str, *patterns: str) -> list[str]:
        found = sorted({f for pattern in patterns for f in (root / folder).glob(pattern)})
        return [f"{up}/{folder}/{f.name}" for f in found]

    generators = [
        ("prometheus-config", ["prometheus.yml"]),
        ("prometheus-rules", files("deploy/prometheus/rules", "*.yml", "*.yaml")),
        ("grafana-datasources", files("grafana/provisioning/datasources", "*.yml", "*.yaml")),
        (
            "grafana-dashboard-providers",
            files("grafana/provisioning/dashboards", "*.yml", "*.yaml"),
        ),
        ("grafana-dashboards", files("grafana/dashboards", "*.json")),
    ]
    return dump_yaml(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": ["prometheus.yaml", "pushgateway.yaml", "grafana.yaml"],
            "configMapGenerator": [{"name": name, "files": listed} for name, listed in generators],
        },
        header,
    )


def render_all(configs: Iterable[Path] | None = None, root: Path = REPO) -> dict[Path, str]:
    """Every generated file, by path relative to the repository root."""
    generated = (
        "# Generated by `gauntlet crds` (make crds) from the pydantic models. Do not edit.\n"
    )
    files: dict[Path, str] = {
        Path("crds") / f"{names.SERVICE_PLURAL}.yaml": dump_yaml(service_crd(), generated),
        Path("crds") / f"{names.SCENARIO_PLURAL}.yaml": dump_yaml(scenario_crd(), generated),
    }
    files[Path("crds") / "kustomization.yaml"] = _kustomization(
        [f"{names.SERVICE_PLURAL}.yaml", f"{names.SCENARIO_PLURAL}.yaml"], generated
    )
    services_dir = Path("deploy") / "examples" / "services"
    example_files: list[str] = []
    for config in sorted(configs if configs is not None else DEFAULT_CONFIG_DIR.glob("*.yaml")):
        service_id, resource = service_example(config)
        header = (
            f"# Generated by `gauntlet crds` (make crds) from farm/configs/{config.name}. "
            "Do not edit.\n"
        )
        files[services_dir / f"{service_id}.yaml"] = dump_yaml(resource, header)
        example_files.append(f"{service_id}.yaml")
    files[services_dir / "kustomization.yaml"] = _kustomization(example_files, generated)
    scenarios_dir = Path("deploy") / "examples" / "scenarios"
    scenario_files: list[str] = []
    for mode in EXAMPLE_SCENARIOS:
        source = SCENARIO_DIR / f"{mode}.yaml"
        resource = scenario_example(source)
        header = (
            f"# Generated by `gauntlet crds` (make crds) from workflows/scenarios/{source.name}. "
            "Do not edit.\n"
        )
        files[scenarios_dir / f"{mode}.yaml"] = dump_yaml(resource, header)
        scenario_files.append(f"{mode}.yaml")
    files[scenarios_dir / "kustomization.yaml"] = _kustomization(scenario_files, generated)
    monitoring = Path("deploy") / "kind" / "monitoring" / "kustomization.yaml"
    files[monitoring] = monitoring_kustomization(
        root,
        "# Generated by `gauntlet crds` (make crds) from grafana/ and deploy/prometheus/rules/.\n"
        "# Reads files outside this folder: build with --load-restrictor LoadRestrictionsNone.\n",
    )
    return files


def stale_files(root: Path = REPO) -> list[Path]:
    """Generated files whose committed text differs from what the models generate now."""
    return [
        path
        for path, text in render_all(root=root).items()
        if not (root / path).exists() or (root / path).read_text(encoding="utf-8") != text
    ]


def write_all(root: Path = REPO) -> list[Path]:
    """Write every generated file under ``root``; returns the paths written."""
    written: list[Path] = []
    for path, text in render_all(root=root).items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(path)
    return written
