"""Pure manifest builders: custom resource in, Kubernetes object dicts out. No API calls here.

Every child carries an ownerReference to its custom resource (garbage collection deletes it with
its owner), the operator's labels, and the project image. Pods run non-root with a read-only
root filesystem; whatever they write goes to emptyDirs.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gauntlet_operator import names
from gauntlet_operator.crds import dump_yaml

Manifest = dict[str, Any]

SERVICES_DIR = "/etc/gauntlet/services"
SCENARIO_DIR = "/etc/gauntlet/scenario"
SCENARIO_FILE = "scenario.yaml"
STATE_DIR = "/var/lib/gauntlet"
TERMINATION_LOG = "/dev/termination-log"
RUNNER_UID = 10001


@dataclass(frozen=True)
class PodSettings:
    """What the children run with; from the operator's environment."""

    image: str = "aam-gauntlet:dev"
    pull_policy: str = "IfNotPresent"
    #: Where a runner pushes its final metrics (a Job is gone before Prometheus scrapes it).
    pushgateway_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PodSettings:
        """``GAUNTLET_IMAGE``, ``GAUNTLET_IMAGE_PULL_POLICY``, ``GAUNTLET_PUSHGATEWAY_URL``."""
        env = os.environ if env is None else env
        return cls(
            image=env.get("GAUNTLET_IMAGE", cls.image),
            pull_policy=env.get("GAUNTLET_IMAGE_PULL_POLICY", cls.pull_policy),
            pushgateway_url=env.get("GAUNTLET_PUSHGATEWAY_URL") or None,
        )


def owner_reference(owner: Mapping[str, Any]) -> dict[str, Any]:
    """A controller ownerReference to ``owner`` (a full object with apiVersion/kind/metadata)."""
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _metadata(
    name: str, namespace: str, labels: Mapping[str, str], owner: Mapping[str, Any] | None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if owner is not None:
        meta["ownerReferences"] = [owner_reference(owner)]
    return meta


def farm_labels(service_name: str) -> dict[str, str]:
    """Labels of every child of one SyntheticService (the selector is a subset)."""
    return {
        names.LABEL_NAME: "gauntlet-farm",
        names.LABEL_INSTANCE: service_name,
        names.LABEL_COMPONENT: names.COMPONENT_FARM,
        names.LABEL_MANAGED_BY: names.MANAGED_BY,
        names.LABEL_SERVICE: service_name,
    }


def _selector(service_name: str) -> dict[str, str]:
    return {names.LABEL_NAME: "gauntlet-farm", names.LABEL_INSTANCE: service_name}


_POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": RUNNER_UID,
    "runAsGroup": RUNNER_UID,
    "fsGroup": RUNNER_UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
_ADMIN_TOKEN_ENV = {
    "name": "GAUNTLET_ADMIN_TOKEN",
    "valueFrom": {"secretKeyRef": {"name": names.ADMIN_TOKEN_SECRET, "key": names.ADMIN_TOKEN_KEY}},
}
_SCRAPE = {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": str(names.FARM_PORT),
    "prometheus.io/path": "/metrics",
}


def admin_token_secret(namespace: str, token: str | None = None) -> Manifest:
    """The per-namespace admin token Secret (created once if absent, never overwritten)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": names.ADMIN_TOKEN_SECRET,
            "namespace": namespace,
            "labels": {names.LABEL_MANAGED_BY: names.MANAGED_BY},
        },
        "stringData": {names.ADMIN_TOKEN_KEY: token or secrets.token_urlsafe(32)},
    }


def farm_configmap(
    service_name: str, namespace: str, config: Mapping[str, Any], owner: Manifest
) -> Manifest:
    """ConfigMap holding the one service spec file the farm Deployment serves.

    The file is named after the resource, which never changes (``spec.id`` may): a merge patch
    keeps map keys it does not mention, so a key named after the id would leave the old file
    behind, and the farm would serve both. The name is unique in the namespace, so a runner
    can project several services' ConfigMaps into one folder.
    """
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(
            names.farm_name(service_name), namespace, farm_labels(service_name), owner
        ),
        "data": {f"{service_name}.yaml": dump_yaml(dict(config))},
    }


def config_hash(configmap: Manifest) -> str:
    """Digest of a ConfigMap's data: on the pod template, a changed spec rolls the pods."""
    blob = json.dumps(configmap["data"], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict[str, Any]:
    return {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu_limit, "memory": memory_limit},
    }


def farm_deployment(
    service_name: str,
    namespace: str,
    replicas: int,
    configmap: Manifest,
    owner: Manifest,
    pods: PodSettings,
) -> Manifest:
    """Deployment running ``gauntlet farm serve`` over the ConfigMap's one spec file."""
    labels = farm_labels(service_name)
    probe = {"httpGet": {"path": "/healthz", "port": "http"}}
    container = {
        "name": "farm",
        "image": pods.image,
        "imagePullPolicy": pods.pull_policy,
        "command": [
            "gauntlet",
            "farm",
            "serve",
            "--configs",
            SERVICES_DIR,
            "--host",
            "0.0.0.0",
            "--port",
            str(names.FARM_PORT),
            "--state-dir",
            f"{STATE_DIR}/farm",
        ],
        "ports": [{"name": "http", "containerPort": names.FARM_PORT, "protocol": "TCP"}],
        "env": [_ADMIN_TOKEN_ENV],
        "readinessProbe": {**probe, "initialDelaySeconds": 2, "periodSeconds": 5},
        "livenessProbe": {
            **probe,
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "resources": _resources("100m", "128Mi", "1", "512Mi"),
        "securityContext": _CONTAINER_SECURITY,
        "volumeMounts": [
            {"name": "services", "mountPath": SERVICES_DIR, "readOnly": True},
            {"name": "state", "mountPath": STATE_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(names.farm_name(service_name), namespace, labels, owner),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": _selector(service_name)},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {names.ANNOTATION_SPEC_HASH: config_hash(configmap), **_SCRAPE},
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": _POD_SECURITY,
                    "containers": [container],
                    "volumes": [
                        {"name": "services", "configMap": {"name": configmap["metadata"]["name"]}},
                        # The farm's ground truth (farm.sqlite3: ledger, attempt log) lives
                        # here: an emptyDir survives container restarts (kill -9) of the pod;
                        # a new pod is a new boot id, which a runner reports as ERROR anyway.
                        {"name": "state", "emptyDir": {"sizeLimit": "1Gi"}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                    ],
                },
            },
        },
    }


def farm_service(service_name: str, namespace: str, owner: Manifest) -> Manifest:
    """ClusterIP Service on port 8001, annotated for Prometheus scraping."""
    meta = _metadata(names.farm_name(service_name), namespace, farm_labels(service_name), owner)
    meta["annotations"] = dict(_SCRAPE)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(service_name),
            "ports": [
                {"name": "http", "port": names.FARM_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def runner_labels(scenario_name: str, generation: int) -> dict[str, str]:
    """Labels of a scenario run's Job, its pod and its ConfigMap."""
    return {
        names.LABEL_NAME: "gauntlet-runner",
        names.LABEL_INSTANCE: scenario_name,
        names.LABEL_COMPONENT: names.COMPONENT_RUNNER,
        names.LABEL_MANAGED_BY: names.MANAGED_BY,
        names.LABEL_SCENARIO: scenario_name,
        names.LABEL_GENERATION: str(generation),
    }


def runner_command(service_urls: Mapping[str, str]) -> list[str]:
    """The runner command line (workflows/README.md): one ``--service-url`` per service, the
    services' spec files (the farms' ConfigMaps, projected) as ``--configs``."""
    command = ["gauntlet", "run", f"{SCENARIO_DIR}/{SCENARIO_FILE}"]
    for service_id, url in sorted(service_urls.items()):
        command += ["--service-url", f"{service_id}={url}"]
    command += [
        "--configs",
        SERVICES_DIR,
        "--no-live",
        "--termination-log",
        TERMINATION_LOG,
        "--json",
        "/tmp/scorecard.json",
        "--state-dir",
        f"{STATE_DIR}/runner",
        # The operator queues runs per farm; a lease left by a runner that was killed (it
        # lapses within 30 s) or held by a run outside the cluster is waited for, not an ERROR.
        # The Job's activeDeadlineSeconds bounds the wait.
        "--wait",
    ]
    return command


def job_deadline_seconds(duration_seconds: float) -> int:
    """A hung runner ends as Error: the run's duration, plus setup, checks and slack."""
    return int(duration_seconds * 2) + 300


def runner_job(
    scenario_name: str,
    namespace: str,
    generation: int,
    duration_seconds: float,
    service_urls: Mapping[str, str],
    service_configmaps: list[str],
    owner: Manifest,
    pods: PodSettings,
    aam_token_secret: tuple[str, str] | None = None,
) -> Manifest:
    """The one Job of a scenario generation; its pod's termination message is the summary.

    ``aam_token_secret`` (Secret name, key) becomes ``GAUNTLET_AAM_TOKEN`` for an external AAM
    under test (``spec.aam.tokenSecretRef``); the URL itself is in the mounted scenario file.
    """
    name = names.runner_job_name(scenario_name, generation)
    labels = runner_labels(scenario_name, generation)
    container = {
        "name": "runner",
        "image": pods.image,
        "imagePullPolicy": pods.pull_policy,
        "command": runner_command(service_urls),
        "env": [_ADMIN_TOKEN_ENV]
        + (
            [{"name": "GAUNTLET_PUSHGATEWAY_URL", "value": pods.pushgateway_url}]
            if pods.pushgateway_url
            else []
        )
        + (
            [
                {
                    "name": "GAUNTLET_AAM_TOKEN",
                    "valueFrom": {
                        "secretKeyRef": {"name": aam_token_secret[0], "key": aam_token_secret[1]}
                    },
                }
            ]
            if aam_token_secret
            else []
        ),
        "terminationMessagePath": TERMINATION_LOG,
        # A runner that dies before writing its summary still explains itself (log tail).
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": _resources("200m", "256Mi", "2", "1Gi"),
        "securityContext": _CONTAINER_SECURITY,
        "volumeMounts": [
            {"name": "scenario", "mountPath": SCENARIO_DIR, "readOnly": True},
            {"name": "services", "mountPath": SERVICES_DIR, "readOnly": True},
            {"name": "state", "mountPath": STATE_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(name, namespace, labels, owner),
        "spec": {
            # One attempt: a FAILED verdict is an answer, not a reason to run again.
            "backoffLimit": 0,
            "activeDeadlineSeconds": job_deadline_seconds(duration_seconds),
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": _POD_SECURITY,
                    "containers": [container],
                    "volumes": [
                        {"name": "scenario", "configMap": {"name": name}},
                        {
                            "name": "services",
                            "projected": {
                                "sources": [
                                    {"configMap": {"name": cm}} for cm in sorted(service_configmaps)
                                ]
                            },
                        },
                        {"name": "state", "emptyDir": {"sizeLimit": "512Mi"}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                    ],
                },
            },
        },
    }


def scenario_configmap(
    scenario_name: str, namespace: str, generation: int, document: Mapping[str, Any], job: Manifest
) -> Manifest:
    """The scenario YAML the Job mounts; owned by the Job, so it goes when the Job goes."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(
            names.runner_job_name(scenario_name, generation),
            namespace,
            runner_labels(scenario_name, generation),
            job,
        ),
        "data": {SCENARIO_FILE: dump_yaml(dict(document))},
    }
