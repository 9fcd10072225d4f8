"""Names the operator, the CRDs and the manifests agree on: API group, kinds, labels, children.

Children get deterministic names, so a retried or restarted operator finds what it made before
instead of making a second one (a create that answers 409 means "already there").
"""

from __future__ import annotations

import hashlib

GROUP = "gauntlet.aam.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

SERVICE_KIND = "SyntheticService"
SERVICE_PLURAL = "syntheticservices"
SCENARIO_KIND = "GauntletScenario"
SCENARIO_PLURAL = "gauntletscenarios"

#: Port every farm container and Service listens on.
FARM_PORT = 8001
#: Per-namespace Secret holding the farm admin token (key ``token``), shared by farms and runners.
ADMIN_TOKEN_SECRET = "gauntlet-admin-token"
ADMIN_TOKEN_KEY = "token"

MANAGED_BY = "gauntlet-operator"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_SERVICE = f"{GROUP}/service"
LABEL_SCENARIO = f"{GROUP}/scenario"
LABEL_GENERATION = f"{GROUP}/generation"
ANNOTATION_SPEC_HASH = f"{GROUP}/spec-hash"

COMPONENT_FARM = "farm"
COMPONENT_RUNNER = "runner"

# Kubernetes label values (the Job name becomes the pods' ``job-name`` label) stop at 63.
_MAX_LABEL = 63


def _bounded(base: str, suffix: str = "") -> str:
    """``base + suffix`` cut to a label-safe length; a hash keeps long names distinct."""
    if len(base) + len(suffix) <= _MAX_LABEL:
        return base + suffix
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    keep = _MAX_LABEL - len(suffix) - len(digest) - 1
    return f"{base[:keep].rstrip('-.')}-{digest}{suffix}"


def farm_name(service_name: str) -> str:
    """Name of the ConfigMap, Deployment and Service of one SyntheticService."""
    return _bounded(f"synsvc-{service_name}")


def runner_job_name(scenario_name: str, generation: int) -> str:
    """The one Job of a scenario generation: same inputs, same name, so never a second Job."""
    return _bounded(f"gsc-{scenario_name}", f"-g{generation}")


def farm_url(service_name: str, namespace: str) -> str:
    """In-cluster URL of a SyntheticService's farm."""
    return f"http://{farm_name(service_name)}.{namespace}.svc:{FARM_PORT}"
