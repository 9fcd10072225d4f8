"""The operator end to end on a real control plane, under its own ServiceAccount's token.

kube-apiserver validates and stores; kube-controller-manager's Deployment, ReplicaSet, Job,
garbage-collector and namespace controllers act; the process node (cp_node) binds the pods and
runs their containers' commands here: the farm as ``gauntlet farm serve``, the runner as
``gauntlet run`` with the Job's command line, env and mounted files. Nothing is played by the
test except the node. The audit log proves the operator's ClusterRole suffices (no 403).
"""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from conftest import OPERATOR_USER, Operator, wait_for
from cp_cluster import REPO, ControlPlane
from cp_node import ProcessNode
from gauntlet_operator import names
from gauntlet_operator.kube import ApiError, KubeApi

FINISHED = ("Passed", "Failed", "Error")
RUN_TIMEOUT = 240.0  # a shared 2-core machine; every wait ends as soon as its state is reached
STRIPE = yaml.safe_load((REPO / "deploy" / "examples" / "services" / "stripe.yaml").read_text())


def scenario_spec(duration: float = 2, seed: int = 3) -> dict[str, Any]:
    return {
        "description": "one service, one workflow, briefly",
        "mode": "mild",
        "duration_seconds": duration,
        "seed": seed,
        "services": ["stripe"],
        "tenants": ["acme"],
        "workflows": [{"name": "high_volume_read", "concurrency": 1}],
        "profile": {"base": "full"},
    }


def services_path(namespace: str) -> str:
    return f"/apis/{names.API_VERSION}/namespaces/{namespace}/{names.SERVICE_PLURAL}"


def scenarios_path(namespace: str) -> str:
    return f"/apis/{names.API_VERSION}/namespaces/{namespace}/{names.SCENARIO_PLURAL}"


def find(api: KubeApi, path: str) -> dict[str, Any] | None:
    try:
        return api.get(path)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def create_service(api: KubeApi, namespace: str) -> dict[str, Any]:
    body = {
        "apiVersion": names.API_VERSION,
        "kind": names.SERVICE_KIND,
        "metadata": {"name": "stripe"},
        "spec": {**STRIPE["spec"], "replicas": 1},
    }
    return api.create(services_path(namespace), body)


def ready_condition(obj: dict[str, Any] | None) -> dict[str, Any]:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), {})


def wait_service_ready(api: KubeApi, namespace: str) -> dict[str, Any]:
    return wait_for(
        "SyntheticService stripe Ready",
        lambda: (
            svc
            if ready_condition(svc := find(api, f"{services_path(namespace)}/stripe")).get("status")
            == "True"
            else None
        ),
        timeout=RUN_TIMEOUT,
    )


def create_scenario(api: KubeApi, namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    body = {
        "apiVersion": names.API_VERSION,
        "kind": names.SCENARIO_KIND,
        "metadata": {"name": name},
        "spec": scenario_spec(**spec),
    }
    return api.create(scenarios_path(namespace), body)


def scenario_status(api: KubeApi, namespace: str, name: str) -> dict[str, Any]:
    return (find(api, f"{scenarios_path(namespace)}/{name}") or {}).get("status") or {}


def wait_phase(
    api: KubeApi,
    namespace: str,
    name: str,
    phases: tuple[str, ...],
    *,
    also: Callable[[], None] | None = None,
    generation: int | None = None,
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        if also is not None:
            also()
        status = scenario_status(api, namespace, name)
        if generation is not None and status.get("observedGeneration") != generation:
            return None
        return status if status.get("phase") in phases else None

    return wait_for(f"scenario {name} in {phases}", probe, timeout=RUN_TIMEOUT)


def runner_jobs(api: KubeApi, namespace: str, scenario: str | None = None) -> list[dict[str, Any]]:
    selector = {names.LABEL_COMPONENT: names.COMPONENT_RUNNER}
    if scenario:
        selector[names.LABEL_SCENARIO] = scenario
    return api.list(f"/apis/batch/v1/namespaces/{namespace}/jobs", selector)


def job_condition(job: dict[str, Any]) -> str | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond["type"])
    return None


def job_finished_at(job: dict[str, Any]) -> str:
    """When the Job controller marked the Job Complete or Failed (RFC 3339, seconds)."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond["lastTransitionTime"])
    raise AssertionError(f"Job {job['metadata']['name']} has not finished")


def owned_by(api: KubeApi, path: str, owner_uid: str) -> list[dict[str, Any]]:
    return [
        item
        for item in api.list(path)
        if any(ref.get("uid") == owner_uid for ref in item["metadata"].get("ownerReferences") or [])
    ]


def operator_calls(control_plane: ControlPlane, **match: str) -> list[dict[str, Any]]:
    """Audit events of the operator's requests matching ``verb``/``resource``/``namespace``."""
    out = []
    for event in control_plane.audit_events():
        if event.get("user", {}).get("username") != OPERATOR_USER:
            continue
        ref = event.get("objectRef") or {}
        fields = {"verb": event.get("verb"), **ref}
        if all(fields.get(k) == v for k, v in match.items()):
            out.append(event)
    return out


def runner_logs(namespace: str) -> str:
    """The tails of the runner containers' logs the process node kept (for a failure's message)."""
    root = Path(tempfile.gettempdir())
    tails = []
    for log in sorted(root.glob(f"gauntlet-controlplane-*/node/{namespace}/gsc-*/container.log")):
        tails.append(f"--- {log.parent.name}\n" + log.read_text(errors="replace")[-3000:])
    return "\n".join(tails)


def assert_verdict_consistent(api: KubeApi, namespace: str, name: str, status: dict[str, Any]):
    """Job condition, pod termination message and scenario status all say the same thing."""
    assert status["phase"] in ("Passed", "Failed"), (status.get("message"), runner_logs(namespace))
    # The operator may read the verdict at SuccessCriteriaMet/FailureTarget (the Job
    # controller's interim conditions, pod already terminated); the Job's end follows.
    job = wait_for(
        f"Job {status['jobName']} Complete or Failed",
        lambda: next(
            (
                j
                for j in runner_jobs(api, namespace, name)
                if j["metadata"]["name"] == status["jobName"] and job_condition(j)
            ),
            None,
        ),
        timeout=RUN_TIMEOUT,
    )
    assert job_condition(job) == ("Complete" if status["phase"] == "Passed" else "Failed")
    pods = api.list(f"/api/v1/namespaces/{namespace}/pods", {"job-name": status["jobName"]})
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    (container,) = pods[0]["status"]["containerStatuses"]
    terminated = container["state"]["terminated"]
    summary = json.loads(terminated["message"])
    assert summary["verdict"] == status["verdict"]
    assert terminated["exitCode"] == (0 if status["phase"] == "Passed" else 1)
    assert pods[0]["status"]["phase"] == ("Succeeded" if status["phase"] == "Passed" else "Failed")
    assert status["verdict"] == ("PASSED" if status["phase"] == "Passed" else "FAILED")
    assert status["scorecard"]["attempts"] > 0 and status["scorecard"]["invariants"]
    passed = next(c for c in status["conditions"] if c["type"] == "Passed")
    assert passed["status"] == ("True" if status["phase"] == "Passed" else "False")


# --- SyntheticService ---------------------------------------------------------------------


def test_synthetic_service_becomes_a_ready_farm_through_the_real_controllers(
    namespace: str,
    operator: Operator,
    node: ProcessNode,
    admin: KubeApi,
    control_plane: ControlPlane,
) -> None:
    service = create_service(admin, namespace)
    uid = service["metadata"]["uid"]
    ready = wait_service_ready(admin, namespace)
    farm = names.farm_name("stripe")
    for path in (
        f"/api/v1/namespaces/{namespace}/configmaps/{farm}",
        f"/api/v1/namespaces/{namespace}/services/{farm}",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/{farm}",
    ):
        (ref,) = admin.get(path)["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == (
            names.SERVICE_KIND,
            "stripe",
            uid,
            True,
        ), path
    deployment = admin.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{farm}")
    # The Deployment controller made one ReplicaSet, the ReplicaSet controller one pod.
    (replicaset,) = owned_by(
        admin, f"/apis/apps/v1/namespaces/{namespace}/replicasets", deployment["metadata"]["uid"]
    )
    (pod,) = owned_by(admin, f"/api/v1/namespaces/{namespace}/pods", replicaset["metadata"]["uid"])
    assert pod["spec"]["nodeName"] and pod["status"]["phase"] == "Running"
    assert ready_condition(pod)["status"] == "True"
    # The pod is a real farm process: it answers on its pod IP.
    with urllib.request.urlopen(f"http://{pod['status']['podIP']}:8001/healthz", timeout=5) as r:
        assert r.status == 200
    status = ready["status"]
    assert status["phase"] == "Ready" and status["readyReplicas"] == 1
    assert status["observedGeneration"] == ready["metadata"]["generation"]
    row = control_plane.kubectl("get", "synsvc", "stripe", "-n", namespace).stdout.splitlines()
    assert row[1].split()[:6] == [
        "stripe",
        "stripe",
        "api_key",
        str(STRIPE["spec"]["rate_limit"]["max_rps"]),
        str(status["schemaVersion"]),
        "True",
    ]


def test_a_service_spec_change_rolls_the_farm_pod(
    namespace: str,
    operator: Operator,
    node: ProcessNode,
    admin: KubeApi,
    control_plane: ControlPlane,
) -> None:
    create_service(admin, namespace)
    wait_service_ready(admin, namespace)
    farm = names.farm_name("stripe")
    deployments = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    pods = f"/api/v1/namespaces/{namespace}/pods"
    (old_pod,) = admin.list(pods)
    admin.patch(f"{services_path(namespace)}/stripe", {"spec": {"rate_limit": {"max_rps": 7}}})

    def rolled() -> dict[str, Any] | None:
        service = find(admin, f"{services_path(namespace)}/stripe") or {}
        status = service.get("status") or {}
        live = [p for p in admin.list(pods) if not p["metadata"].get("deletionTimestamp")]
        fresh = [p for p in live if p["metadata"]["uid"] != old_pod["metadata"]["uid"]]
        if (
            status.get("rateLimitRps") == 7
            and ready_condition(service).get("status") == "True"
            and len(live) == 1
            and fresh
            and ready_condition(fresh[0]).get("status") == "True"
        ):
            return service
        return None

    service = wait_for("the farm rolled to the new spec", rolled, timeout=RUN_TIMEOUT)
    assert service["status"]["observedGeneration"] == 2
    deployment = admin.get(f"{deployments}/{farm}")
    assert deployment["metadata"]["generation"] == 2
    # The new pod serves the new spec file (read from the ConfigMap the operator patched).
    (pod,) = [p for p in admin.list(pods) if not p["metadata"].get("deletionTimestamp")]
    configmap = admin.get(f"/api/v1/namespaces/{namespace}/configmaps/{farm}")
    assert yaml.safe_load(configmap["data"]["stripe.yaml"])["rate_limit"]["max_rps"] == 7
    replicasets = owned_by(
        admin, f"/apis/apps/v1/namespaces/{namespace}/replicasets", deployment["metadata"]["uid"]
    )
    assert sorted(rs["spec"]["replicas"] for rs in replicasets) == [0, 1]
    assert pod["metadata"]["uid"] != old_pod["metadata"]["uid"]


def test_the_longest_names_the_crds_allow_give_valid_children(
    namespace: str,
    operator: Operator,
    node: ProcessNode,
    admin: KubeApi,
    control_plane: ControlPlane,
) -> None:
    """56-character service and 63-character scenario names: every child name and label fits."""
    service_name = "s" * 56
    body = {
        "apiVersion": names.API_VERSION,
        "kind": names.SERVICE_KIND,
        "metadata": {"name": service_name},
        "spec": {**STRIPE["spec"], "replicas": 1},
    }
    admin.create(services_path(namespace), body)
    wait_for(
        "the long-named farm Ready",
        lambda: (
            ready_condition(find(admin, f"{services_path(namespace)}/{service_name}")).get("status")
            == "True"
        ),
        timeout=RUN_TIMEOUT,
    )
    scenario_name = "g" * 63
    create_scenario(admin, namespace, scenario_name)
    status = wait_phase(admin, namespace, scenario_name, FINISHED)
    assert len(status["jobName"]) <= 63
    assert_verdict_consistent(admin, namespace, scenario_name, status)
    too_long = {**body, "metadata": {"name": "s" * 57}}
    try:
        admin.create(services_path(namespace), too_long)
    except ApiError as exc:
        assert exc.status == 422 and "metadata.name" in exc.message
    else:
        raise AssertionError("a 57-character SyntheticService name was accepted")


# --- GauntletScenario ---------------------------------------------------------------------


def test_scenario_runs_as_one_job_whose_pod_verdict_lands_in_status(
    namespace: str,
    operator: Operator,
    node: ProcessNode,
    admin: KubeApi,
    control_plane: ControlPlane,
) -> None:
    create_service(admin, namespace)
    wait_service_ready(admin, namespace)
    scenario = create_scenario(admin, namespace, "quick")
    status = wait_phase(admin, namespace, "quick", FINISHED)
    assert status["jobName"] == names.runner_job_name("quick", 1)
    (job,) = runner_jobs(admin, namespace, "quick")
    (ref,) = job["metadata"]["ownerReferences"]
    assert ref["uid"] == scenario["metadata"]["uid"] and ref["kind"] == names.SCENARIO_KIND
    assert_verdict_consistent(admin, namespace, "quick", status)
    assert status["mode"] == "mild" and status["observedGeneration"] == 1
    row = control_plane.kubectl("get", "gsc", "quick", "-n", namespace).stdout.splitlines()
    assert row[1].split()[:4] == ["quick", "mild", status["phase"], status["verdict"]]


def test_operator_killed_mid_run_comes_back_to_the_same_single_job(
    namespace: str,
    operator: Operator,
    node: ProcessNode,
    admin: KubeApi,
    control_plane: ControlPlane,
) -> None:
    create_service(admin, namespace)
    wait_service_ready(admin, namespace)
    create_scenario(admin, namespace, "survivor", duration=8)
    running = wait_phase(admin, namespace, "survivor", ("Running",))
    farm_path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{names.farm_name('stripe')}"
    farm_before = admin.get(farm_path)["metadata"]["generation"]
    operator.kill()  # SIGKILL while the runner pod runs
    operator.start()
    status = wait_phase(admin, namespace, "survivor", FINISHED)
    assert status["jobName"] == running["jobName"]
    assert [j["metadata"]["name"] for j in runner_jobs(admin, namespace)] == [running["jobName"]]
    assert_verdict_consistent(admin, namespace, "survivor", status)
    # Resuming re-applied the farm's children: the server found nothing to change (a new
    # Deployment generation would have rolled the farm pod under the running scenario).
    assert admin.get(farm_path)["metadata"]["generation"] == farm_before
    # The audit log: one Job creation by the operator, ever, for this namespace.
    creates = operator_calls(control_plane, verb="create", resource="jobs", namespace=namespace)
    assert [e["responseStatus"]["code"] for e in creates] == [201]


def test_a_new_spec_generation_replaces_the_running_job(
    namespace: str,
    operator: Operator,
    node: ProcessNode,
    admin: KubeApi,
    control_plane: ControlPlane,
) -> None:
    create_service(admin, namespace)
    wait_service_ready(admin, namespace)
    create_scenario(admin, namespace, "evolving", duration=30)
    first = wait_phase(admin, namespace, "evolving", ("Running",))
    admin.patch(
        f"{scenarios_path(namespace)}/evolving", {"spec": {"seed": 4, "duration_seconds": 2}}
    )
    status = wait_phase(admin, namespace, "evolving", FINISHED, generation=2)
    assert status["jobName"] == names.runner_job_name("evolving", 2) != first["jobName"]
    assert_verdict_consistent(admin, namespace, "evolving", status)
    assert status["scorecard"]["seed"] == 4
    # The two runs never shared the farm: generation 2's Job was created only after the node
    # had stopped generation 1's runner (its grace-0 pod deletion, as a kubelet confirms).
    stopped = [
        e["stageTimestamp"]
        for e in control_plane.audit_events()
        if e["verb"] == "delete"
        and e["user"]["username"] == "gauntlet-test-admin"
        and (e.get("objectRef") or {}).get("resource") == "pods"
        and (e.get("objectRef") or {}).get("name", "").startswith(first["jobName"] + "-")
    ]
    creates = operator_calls(control_plane, verb="create", resource="jobs", namespace=namespace)
    assert len(creates) == 2 and stopped
    assert max(stopped) <= creates[1]["requestReceivedTimestamp"]
    # Generation 1's Job was deleted by the operator, its pod and ConfigMap by the collector.
    wait_for(
        "generation 1's Job, pod and ConfigMap to go",
        lambda: (
            [j["metadata"]["name"] for j in runner_jobs(admin, namespace)] == [status["jobName"]]
            and not admin.list(
                f"/api/v1/namespaces/{namespace}/pods", {"job-name": first["jobName"]}
            )
            and find(admin, f"/api/v1/namespaces/{namespace}/configmaps/{first['jobName']}") is None
        ),
        timeout=RUN_TIMEOUT,
    )


def test_deleting_resources_leaves_their_children_to_the_garbage_collector(
    namespace: str,
    operator: Operator,
    node: ProcessNode,
    admin: KubeApi,
    control_plane: ControlPlane,
) -> None:
    create_service(admin, namespace)
    wait_service_ready(admin, namespace)
    create_scenario(admin, namespace, "doomed", duration=30)
    job_name = wait_phase(admin, namespace, "doomed", ("Running",))["jobName"]
    assert find(admin, f"/api/v1/namespaces/{namespace}/configmaps/{job_name}") is not None
    admin.delete(f"{scenarios_path(namespace)}/doomed")
    wait_for(
        "the Job, its ConfigMap and its pod to be collected",
        lambda: (
            not runner_jobs(admin, namespace)
            and find(admin, f"/api/v1/namespaces/{namespace}/configmaps/{job_name}") is None
            and not admin.list(f"/api/v1/namespaces/{namespace}/pods", {"job-name": job_name})
        ),
        timeout=RUN_TIMEOUT,
    )
    farm = names.farm_name("stripe")
    admin.delete(f"{services_path(namespace)}/stripe")
    wait_for(
        "the farm's ConfigMap, Service, Deployment, ReplicaSet and pod to be collected",
        lambda: (
            all(
                find(admin, path) is None
                for path in (
                    f"/api/v1/namespaces/{namespace}/configmaps/{farm}",
                    f"/api/v1/namespaces/{namespace}/services/{farm}",
                    f"/apis/apps/v1/namespaces/{namespace}/deployments/{farm}",
                )
            )
            and not admin.list(f"/apis/apps/v1/namespaces/{namespace}/replicasets")
            and not admin.list(f"/api/v1/namespaces/{namespace}/pods")
        ),
        timeout=RUN_TIMEOUT,
    )
    # The operator deleted nothing itself (it may not: its role has no delete on these).
    deletes = [
        e
        for e in operator_calls(control_plane, verb="delete", namespace=namespace)
        if e["objectRef"].get("resource") != "jobs"
    ]
    assert deletes == []


def test_two_scenarios_on_one_farm_never_run_at_once(
    namespace: str,
    operator: Operator,
    node: ProcessNode,
    admin: KubeApi,
    control_plane: ControlPlane,
) -> None:
    """Issue 10: the later one is Queued, says behind whom, and starts when the farm is free."""
    create_service(admin, namespace)
    wait_service_ready(admin, namespace)
    # Created back to back: the operator sees both at (nearly) the same moment.
    create_scenario(admin, namespace, "first", duration=6)
    create_scenario(admin, namespace, "second", duration=2)
    overlaps: list[list[str]] = []
    queued_seen: dict[str, dict[str, Any]] = {}

    def watch() -> None:
        unfinished = [
            j["metadata"]["name"] for j in runner_jobs(admin, namespace) if job_condition(j) is None
        ]
        if len(unfinished) > 1:
            overlaps.append(unfinished)
        for name in ("first", "second"):
            status = scenario_status(admin, namespace, name)
            if status.get("phase") == "Queued":
                queued_seen.setdefault(name, status)

    wait_phase(admin, namespace, "first", FINISHED, also=watch)
    wait_phase(admin, namespace, "second", FINISHED, also=watch)
    assert overlaps == []
    assert len(queued_seen) == 1, queued_seen  # exactly one of them waited
    ((waiter, queued),) = queued_seen.items()
    holder = "second" if waiter == "first" else "first"
    assert queued["queuedBehind"] == holder
    assert f"Queued behind GauntletScenario {holder}" in queued["message"]
    assert "farm stripe" in queued["message"] and queued["farms"] == ["stripe"]
    accepted = next(c for c in queued["conditions"] if c["type"] == "Accepted")
    assert (accepted["status"], accepted["reason"]) == ("False", "Queued")
    # The waiter's Job was created only after the holder's Job had finished.
    jobs = {j["metadata"]["labels"][names.LABEL_SCENARIO]: j for j in runner_jobs(admin, namespace)}
    assert jobs[waiter]["metadata"]["creationTimestamp"] >= job_finished_at(jobs[holder])
    for name in ("first", "second"):
        status = scenario_status(admin, namespace, name)
        assert status.get("queuedBehind") is None  # cleared (merge patch with null)
        assert_verdict_consistent(admin, namespace, name, status)


def events_for(api: KubeApi, namespace: str, name: str) -> list[dict[str, Any]]:
    return [
        e
        for e in api.list(f"/api/v1/namespaces/{namespace}/events")
        if e.get("involvedObject", {}).get("name") == name
    ]


def test_problems_are_reported_in_status_and_as_warning_events(
    namespace: str,
    operator: Operator,
    node: ProcessNode,
    admin: KubeApi,
    control_plane: ControlPlane,
) -> None:
    """What the schema cannot say, the operator reports: status condition + Warning event."""
    bad_service = {
        "apiVersion": names.API_VERSION,
        "kind": names.SERVICE_KIND,
        "metadata": {"name": "stripe"},
        "spec": {
            **STRIPE["spec"],
            # Passes the CRD schema, fails the model: the drift step names no existing field.
            "drift_schedule": [
                {"after_calls": 5, "action": "remove", "resource": "invoices", "field": "nope"}
            ],
        },
    }
    admin.create(services_path(namespace), bad_service)
    orphan = scenario_spec()
    orphan["services"] = ["nosuch"]
    admin.create(
        scenarios_path(namespace),
        {
            "apiVersion": names.API_VERSION,
            "kind": names.SCENARIO_KIND,
            "metadata": {"name": "orphan"},
            "spec": orphan,
        },
    )
    bad_params = scenario_spec()
    bad_params["services"] = ["nosuch"]
    bad_params["workflows"] = [{"name": "idempotent_write", "params": {"x": {"a": 1}}}]
    admin.create(
        scenarios_path(namespace),
        {
            "apiVersion": names.API_VERSION,
            "kind": names.SCENARIO_KIND,
            "metadata": {"name": "bad-params"},
            "spec": bad_params,
        },
    )

    service = wait_for(
        "SyntheticService Invalid",
        lambda: (
            (s := find(admin, f"{services_path(namespace)}/stripe"))
            and (s.get("status") or {}).get("phase") == "Invalid"
            and s
        ),
        timeout=RUN_TIMEOUT,
    )
    ready = ready_condition(service)
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert ready["message"].startswith("spec.drift_schedule[0]: field 'nope' does not exist")
    assert find(admin, f"/apis/apps/v1/namespaces/{namespace}/deployments/synsvc-stripe") is None

    pending = wait_phase(admin, namespace, "orphan", ("Pending",))
    accepted = next(c for c in pending["conditions"] if c["type"] == "Accepted")
    assert accepted["reason"] == "ServiceNotFound"
    assert "spec.services[0]: no SyntheticService with spec.id 'nosuch'" in accepted["message"]

    error = wait_phase(admin, namespace, "bad-params", ("Error",))
    accepted = next(c for c in error["conditions"] if c["type"] == "Accepted")
    assert (
        accepted["reason"] == "InvalidSpec" and "spec.workflows[0].params.x" in accepted["message"]
    )
    assert runner_jobs(admin, namespace) == []

    for name, reason in (
        ("stripe", "InvalidSpec"),
        ("orphan", "ServiceNotFound"),
        ("bad-params", "InvalidSpec"),
    ):
        found = wait_for(
            f"a Warning event {reason} for {name}",
            lambda name=name, reason=reason: [
                e
                for e in events_for(admin, namespace, name)
                if e.get("type") == "Warning" and e.get("reason") == reason
            ],
            timeout=RUN_TIMEOUT,
        )
        assert found[0]["message"]


def test_the_operator_role_was_enough_for_everything_it_did(
    operator: Operator, control_plane: ControlPlane
) -> None:
    """The audit log: the operator (its ServiceAccount token) was never refused."""
    time.sleep(1)  # the audit backend writes as the requests end
    calls = operator_calls(control_plane)
    assert len(calls) > 20, "the audit log shows the operator's requests"
    denied = [
        (e["verb"], e.get("objectRef"))
        for e in calls
        if (e.get("annotations") or {}).get("authorization.k8s.io/decision") != "allow"
    ]
    assert denied == [], "RBAC refused the operator these calls"
    # A 403 can also mean "namespace is being terminated" (content in a namespace the tests
    # delete); that is the only kind allowed.
    forbidden = [
        (e["verb"], e.get("objectRef"), e["responseStatus"].get("message"))
        for e in calls
        if e.get("responseStatus", {}).get("code") == 403
        and "because it is being terminated" not in e["responseStatus"].get("message", "")
    ]
    assert forbidden == []
