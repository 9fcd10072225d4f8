"""kopf handlers. Thin: validate, call the pure builders, create/patch, write status.

Run with ``kopf run --standalone --all-namespaces -m gauntlet_operator.handlers``.

- ``SyntheticService`` -> ConfigMap + Deployment + Service (the farm); status from the Deployment.
- ``GauntletScenario`` -> one Job per generation (deterministic name: a retry or a restarted
  operator gets 409 and carries on); status from the Job and its pod's termination message.

Status that follows children (readiness, run phase) is written under one lock per resource
from freshly read objects, so concurrent handlers cannot put an older state over a newer one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

import kopf

from gauntlet_operator import farm_queue, kube, manifests, names, observe, validation
from gauntlet_operator.kube import ApiError, collection_path, object_path
from gauntlet_operator.status import (
    ScenarioPhase,
    ScenarioStatus,
    ServicePhase,
    condition,
)

#: Retry delays: a missing service may be created any minute; a rolling one is seconds away.
MISSING_SERVICE_DELAY = 60
SERVICE_NOT_READY_DELAY = 15
#: A queued scenario looks again this often whether its farms are free.
QUEUED_RETRY_DELAY = 5

_FARM_CHILDREN = {names.LABEL_MANAGED_BY: names.MANAGED_BY, names.LABEL_COMPONENT: "farm"}
_RUNNER_CHILDREN = {names.LABEL_MANAGED_BY: names.MANAGED_BY, names.LABEL_COMPONENT: "runner"}


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Keep kopf's bookkeeping in our own annotations (the status schema is structural)."""
    settings.persistence.finalizer = f"{names.GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=names.GROUP, key="last-handled-configuration"
    )
    # Kubernetes events only for trouble, posted explicitly (kopf.warn) where a user must act.
    settings.posting.level = logging.WARNING


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    """Service account in the cluster, else the kubeconfig named by $KUBECONFIG at this moment."""
    config = kube.load_configuration()
    kube.set_api(kube.KubeApi(config))
    header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix(
        "authorization"
    )
    scheme, _sep, token = (header or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=config.host,
        ca_path=config.ssl_ca_cert,
        insecure=not config.verify_ssl,
        username=config.username or None,
        password=config.password or None,
        scheme=scheme or ("Bearer" if token else None),
        token=token or None,
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
    )


def _conditions(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(c) for c in status.get("conditions") or []]


def _merge_conditions(
    previous: list[dict[str, Any]], new: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Replace conditions of the same type, keep the others, in a stable order."""
    kinds = {c["type"] for c in new}
    return [c for c in previous if c.get("type") not in kinds] + new


# --- SyntheticService -------------------------------------------------------------------------


@kopf.on.resume(names.GROUP, names.VERSION, names.SERVICE_PLURAL)
@kopf.on.create(names.GROUP, names.VERSION, names.SERVICE_PLURAL)
@kopf.on.update(names.GROUP, names.VERSION, names.SERVICE_PLURAL, field="spec")
def reconcile_service(
    body: kopf.Body,
    spec: kopf.Spec,
    name: str,
    namespace: str | None,
    meta: kopf.Meta,
    status: kopf.Status,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """Validate the spec, then create or update the farm's ConfigMap, Deployment and Service."""
    assert namespace is not None  # a namespaced resource
    generation = meta.get("generation")
    path = object_path(names.API_VERSION, names.SERVICE_PLURAL, namespace, name)
    api = kube.api()
    model, problems = validation.validate_service(spec)
    if model is None:
        message = "; ".join(problems)
        if status.get("endpoint"):
            message += " (the farm keeps serving the last valid spec)"
        logger.error(f"spec rejected: {message}")
        kopf.warn(body, reason="InvalidSpec", message=message)
        with _status_lock(path):
            previous = _conditions(status)
            invalid = condition(
                "Ready", False, "InvalidSpec", message, generation=generation, previous=previous
            )
            update = {
                "phase": ServicePhase.Invalid.value,
                "observedGeneration": generation,
                "conditions": [invalid.to_patch()],
            }
            api.patch(f"{path}/status", {"status": update})
        return

    owner = validation.plain(body)
    pods = manifests.PodSettings.from_env()
    configmap = manifests.farm_configmap(name, namespace, validation.farm_config(spec), owner)
    deployment = manifests.farm_deployment(name, namespace, model.replicas, configmap, owner, pods)
    service = manifests.farm_service(name, namespace, owner)
    # Everything is built (and so validated) before the first write: no half-created children.
    kube.create_if_absent(api, manifests.admin_token_secret(namespace))
    kube.create_or_patch(api, configmap)
    kube.create_or_patch(api, deployment)
    kube.create_or_patch(api, service)
    understood = {
        "observedGeneration": generation,
        "endpoint": names.farm_url(name, namespace),
        "serviceId": model.id,
        "authType": model.auth.type.value,
        "rateLimitRps": model.rate_limit.max_rps,
        "schemaVersion": model.schema_.version,
    }
    readiness = _sync_service_status(api, path, namespace, name, understood)
    logger.info(f"farm for {model.id} applied ({readiness})")


_locks_guard = threading.Lock()
#: Held while a scenario checks the farm queue and claims its farms (status, then Job): two
#: scenarios on one farm cannot both find it free.
_launch_lock = threading.Lock()
_locks: dict[str, threading.Lock] = {}


def _status_lock(path: str) -> threading.Lock:
    """One lock per custom resource: read-compute-write of its status never interleaves.

    Handlers run in kopf's thread pool; with the lock, whoever writes last has read the
    freshest children, so a slow writer cannot put an older state over a newer one.
    """
    with _locks_guard:
        return _locks.setdefault(path, threading.Lock())


def _sync_service_status(
    api: kube.KubeApi,
    path: str,
    namespace: str,
    name: str,
    understood: dict[str, Any] | None = None,
) -> str:
    """Write the farm Deployment's current readiness (and, from reconcile, the spec's figures)."""
    deployment_path = object_path("apps/v1", "deployments", namespace, names.farm_name(name))
    with _status_lock(path):
        try:
            owner = api.get(path)
        except ApiError as exc:
            if exc.status == 404:
                return "owner gone"  # garbage collection takes the children
            raise
        status = owner.get("status") or {}
        if understood is None and status.get("phase") == ServicePhase.Invalid.value:
            return "spec rejected"  # the rejection message stays until the spec is fixed
        try:
            readiness = observe.deployment_readiness(api.get(deployment_path))
        except ApiError as exc:
            if exc.status != 404:
                raise
            return "no Deployment"
        previous = _conditions(status)
        ready = condition(
            "Ready",
            readiness.ready,
            readiness.reason,
            readiness.message,
            generation=(understood or status).get("observedGeneration"),
            previous=previous,
        )
        update = {
            **(understood or {}),
            "phase": (ServicePhase.Ready if readiness.ready else ServicePhase.Progressing).value,
            "replicas": readiness.replicas,
            "readyReplicas": readiness.ready_replicas,
            "conditions": _merge_conditions(previous, [ready.to_patch()]),
        }
        if any(status.get(k) != v for k, v in update.items()):
            api.patch(f"{path}/status", {"status": update})
        return readiness.message


@kopf.on.event("apps", "v1", "deployments", labels=_FARM_CHILDREN)
def farm_deployment_changed(
    event: kopf.RawEvent, namespace: str | None, labels: kopf.Labels, **_: Any
) -> None:
    """Copy a farm Deployment's readiness into its SyntheticService's status (read fresh)."""
    service_name = labels.get(names.LABEL_SERVICE)
    if event.get("type") == "DELETED" or not service_name or not namespace:
        return
    path = object_path(names.API_VERSION, names.SERVICE_PLURAL, namespace, service_name)
    _sync_service_status(kube.api(), path, namespace, service_name)


# --- GauntletScenario -------------------------------------------------------------------------


def _ready(service: Mapping[str, Any]) -> bool:
    for cond in (service.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def _pending(
    patch: kopf.Patch,
    generation: int | None,
    mode: str | None,
    reason: str,
    message: str,
    previous: list[dict[str, Any]],
    phase: ScenarioPhase = ScenarioPhase.Pending,
) -> None:
    accepted = condition(
        "Accepted", False, reason, message, generation=generation, previous=previous
    )
    patch.status.update(
        ScenarioStatus(
            phase=phase,
            observedGeneration=generation,
            mode=mode,
            message=message,
            conditions=[accepted],
        ).to_patch()
    )


@kopf.on.resume(names.GROUP, names.VERSION, names.SCENARIO_PLURAL)
@kopf.on.create(names.GROUP, names.VERSION, names.SCENARIO_PLURAL)
@kopf.on.update(names.GROUP, names.VERSION, names.SCENARIO_PLURAL, field="spec")
def launch_scenario(
    body: kopf.Body,
    spec: kopf.Spec,
    name: str,
    namespace: str | None,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """Start this generation's Job once: validate, resolve services, create Job + ConfigMap."""
    assert namespace is not None  # a namespaced resource
    generation = int(meta.get("generation") or 1)
    job_name = names.runner_job_name(name, generation)
    launched = status.get("observedGeneration") == generation and status.get("jobName") == job_name
    if launched and status.get("phase") != ScenarioPhase.Pending.value:
        return  # under way or over (e.g. an operator restart): the Job watch follows it
    previous = _conditions(status)
    model, problems = validation.validate_scenario(name, spec)
    if model is None:
        message = "; ".join(problems)
        logger.error(f"spec rejected: {message}")
        kopf.warn(body, reason="InvalidSpec", message=message)
        _pending(
            patch, generation, None, "InvalidSpec", message, previous, phase=ScenarioPhase.Error
        )
        return

    api = kube.api()
    services = api.list(collection_path(names.API_VERSION, names.SERVICE_PLURAL, namespace))
    by_id: dict[str, dict[str, Any]] = {}
    for service in services:
        service_id = (service.get("spec") or {}).get("id")
        if service_id and service_id not in by_id:
            by_id[service_id] = service
    missing = [
        f"spec.services[{i}]: no SyntheticService with spec.id '{sid}' in namespace '{namespace}'"
        for i, sid in enumerate(model.services)
        if sid not in by_id
    ]
    if missing:
        message = "; ".join(missing)
        _pending(patch, generation, model.mode.value, "ServiceNotFound", message, previous)
        kopf.warn(body, reason="ServiceNotFound", message=message)
        raise kopf.TemporaryError(message, delay=MISSING_SERVICE_DELAY)
    not_ready = [sid for sid in model.services if not _ready(by_id[sid])]
    if not_ready:
        message = f"waiting for SyntheticServices to be Ready: {', '.join(not_ready)}"
        _pending(patch, generation, model.mode.value, "ServicesNotReady", message, previous)
        raise kopf.TemporaryError(message, delay=SERVICE_NOT_READY_DELAY)

    kube.create_if_absent(api, manifests.admin_token_secret(namespace))
    resource_names = {sid: by_id[sid]["metadata"]["name"] for sid in model.services}
    farms = {names.farm_name(r): r for r in resource_names.values()}
    job = manifests.runner_job(
        name,
        namespace,
        generation,
        model.duration_seconds,
        {sid: names.farm_url(rname, namespace) for sid, rname in resource_names.items()},
        list(farms),
        validation.plain(body),
        manifests.PodSettings.from_env(),
        aam_token_secret=(
            (model.aam.token_secret_ref.name, model.aam.token_secret_ref.key)
            if model.aam is not None and model.aam.token_secret_ref is not None
            else None
        ),
    )
    path = object_path(names.API_VERSION, names.SCENARIO_PLURAL, namespace, name)
    with _launch_lock:
        # This generation's Job, if it exists, is adopted: it holds its farms already.
        created = _existing_job(api, job)
        if not created:
            # Older generations go first; the queue then waits until their pods are gone.
            _supersede_older_runs(api, name, namespace, generation)
            waiting = farm_queue.blocker(
                body,
                farms,
                api.list(collection_path("batch/v1", "jobs", namespace), _RUNNER_CHILDREN),
                api.list(collection_path(names.API_VERSION, names.SCENARIO_PLURAL, namespace)),
            )
            if waiting is not None:
                message = waiting.message()
                queued = ScenarioStatus(
                    phase=ScenarioPhase.Queued,
                    observedGeneration=generation,
                    mode=model.mode.value,
                    farms=sorted(farms.values()),
                    queuedBehind=waiting.scenario,
                    message=message,
                    conditions=[
                        condition(
                            "Accepted",
                            False,
                            "Queued",
                            message,
                            generation=generation,
                            previous=previous,
                        )
                    ],
                )
                with _status_lock(path):
                    api.patch(f"{path}/status", {"status": queued.to_patch()})
                logger.info(message)
                raise kopf.TemporaryError(message, delay=QUEUED_RETRY_DELAY)
        if not launched:
            # Written before the Job exists, so every event of the Job finds its scenario
            # expecting it, nothing written later can overtake the Job's progress, and other
            # scenarios see the farms claimed (farm_queue) before the Job is there.
            launching = ScenarioStatus(
                phase=ScenarioPhase.Pending,
                observedGeneration=generation,
                mode=model.mode.value,
                jobName=job_name,
                farms=sorted(farms.values()),
                message=f"Job {job_name} created",
                conditions=[
                    condition("Accepted", True, "JobCreated", f"Job {job_name}", previous=previous),
                    condition("Running", False, "JobPending", "", previous=previous),
                    condition("Passed", None, "NotFinished", "", previous=previous),
                ],
            )
            with _status_lock(path):
                api.patch(f"{path}/status", {"status": launching.to_patch()})
        fresh = False
        if not created:
            created, fresh = kube.create_if_absent(api, job)
        if not created:
            created = api.get(kube.manifest_path(job))  # 409: this generation's Job exists
    document = validation.scenario_document(name, spec)
    kube.create_if_absent(
        api, manifests.scenario_configmap(name, namespace, generation, document, created)
    )
    if not fresh:
        # Adopted (an operator stopped between creating it and recording it): it may have run.
        _sync_run(api, path, namespace, job_name)
    logger.info(f"Job {job_name} {'created' if fresh else 'already existed'}")


def _existing_job(api: kube.KubeApi, job: dict[str, Any]) -> dict[str, Any]:
    """The recorded Job if it is still there, else ``{}``."""
    try:
        return api.get(kube.manifest_path(job))
    except ApiError as exc:
        if exc.status != 404:
            raise
    return {}


def _supersede_older_runs(
    api: kube.KubeApi, scenario: str, namespace: str, generation: int
) -> None:
    """A new spec generation stops the previous generation's run (its Job and ConfigMap)."""
    jobs = api.list(
        collection_path("batch/v1", "jobs", namespace), {names.LABEL_SCENARIO: scenario}
    )
    for job in jobs:
        labels = job["metadata"].get("labels") or {}
        stopping = bool(job["metadata"].get("deletionTimestamp"))
        if labels.get(names.LABEL_GENERATION) != str(generation) and not stopping:
            try:
                # Foreground: the Job stays (deletionTimestamp set) until its pod is gone, so
                # the farm queue sees the old run until it has really stopped.
                api.delete(
                    object_path("batch/v1", "jobs", namespace, job["metadata"]["name"]),
                    propagation="Foreground",
                )
            except ApiError as exc:
                if exc.status != 404:
                    raise


@kopf.on.event("batch", "v1", "jobs", labels=_RUNNER_CHILDREN)
def runner_job_changed(
    event: kopf.RawEvent,
    name: str,
    namespace: str | None,
    labels: kopf.Labels,
    **_: Any,
) -> None:
    """Follow a runner Job: phase, then the verdict and scorecard from the pod's message.

    The event only says which Job moved; its state is read fresh under the scenario's lock.
    """
    scenario = labels.get(names.LABEL_SCENARIO)
    if event.get("type") == "DELETED" or not scenario or not namespace:
        return
    path = object_path(names.API_VERSION, names.SCENARIO_PLURAL, namespace, scenario)
    _sync_run(kube.api(), path, namespace, name)


def _sync_run(api: kube.KubeApi, path: str, namespace: str, job_name: str) -> None:
    """Write what a scenario's Job says into the scenario's status (if it is its current Job)."""
    with _status_lock(path):
        _sync_run_locked(api, path, namespace, job_name)


def _sync_run_locked(api: kube.KubeApi, path: str, namespace: str, job_name: str) -> None:
    """:func:`_sync_run` with the lock held: fresh scenario, Job and pods in, one status patch."""
    try:
        owner = api.get(path)
        job = api.get(object_path("batch/v1", "jobs", namespace, job_name))
    except ApiError as exc:
        if exc.status == 404:
            return  # the scenario or its Job is gone
        raise
    status = owner.get("status") or {}
    if status.get("jobName") != job_name or status.get("observedGeneration") != owner[
        "metadata"
    ].get("generation"):
        return  # not (yet, or any more) the Job of the scenario's current generation
    phase = status.get("phase")
    if phase in {p.value for p in ScenarioPhase if p.finished}:
        return  # the verdict is in; a later event (e.g. a deletion) changes nothing
    pods = api.list(collection_path("v1", "pods", namespace), {"job-name": job_name})
    state = observe.run_state(job, pods)
    if phase == state.phase.value and status.get("message") == state.message:
        return
    previous = _conditions(status)
    conditions = [
        condition(
            "Running",
            state.phase is ScenarioPhase.Running,
            state.reason,
            state.message,
            previous=previous,
        ),
        condition(
            "Passed",
            None if not state.phase.finished else state.phase is ScenarioPhase.Passed,
            state.reason if state.phase.finished else "NotFinished",
            state.message if state.phase.finished else "",
            previous=previous,
        ),
    ]
    update: dict[str, Any] = {
        "phase": state.phase.value,
        "message": state.message,
        "startTime": state.start_time,
        "completionTime": state.completion_time,
        "verdict": state.scorecard.verdict.value if state.scorecard else None,
        "scorecard": state.scorecard.to_patch() if state.scorecard else None,
        "conditions": _merge_conditions(previous, [c.to_patch() for c in conditions]),
    }
    api.patch(f"{path}/status", {"status": update})
