"""The real kopf operator end to end against kmock's emulated Kubernetes API.

The emulator has no controllers: the tests play the Deployment and Job controllers and the
kubelet by patching their status (and creating the runner pod) the way those would.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from gauntlet_operator import names
from operator_testkit import (
    NAMESPACE,
    PASSED,
    RBAC,
    SEEN_CALLS,
    TestApi,
    eventually,
    rbac_grants,
    running_operator,
)

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"
NS = f"/api/v1/namespaces/{NAMESPACE}"
APPS = f"/apis/apps/v1/namespaces/{NAMESPACE}"
BATCH = f"/apis/batch/v1/namespaces/{NAMESPACE}"
CR = f"/apis/{names.API_VERSION}/namespaces/{NAMESPACE}"
SERVICES = f"{CR}/{names.SERVICE_PLURAL}"
SCENARIOS = f"{CR}/{names.SCENARIO_PLURAL}"


def example_service(service_id: str = "stripe") -> dict[str, Any]:
    resource = yaml.safe_load((EXAMPLES / "services" / f"{service_id}.yaml").read_text())
    resource["metadata"]["namespace"] = NAMESPACE
    return resource


def scenario(name: str = "storm-run", **spec: Any) -> dict[str, Any]:
    body = {
        "mode": "storm",
        "duration_seconds": 30,
        "seed": 7,
        "services": ["stripe"],
        "workflows": [{"name": "idempotent_write", "concurrency": 2}],
    }
    body.update(spec)
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.SCENARIO_KIND,
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": body,
    }


async def status_of(api: TestApi, path: str) -> dict[str, Any]:
    obj = await api.find(path)
    return (obj or {}).get("status") or {}


def ready_condition(status: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})


async def make_farm_ready(api: TestApi, name: str) -> None:
    """Play the Deployment controller: the farm's pods are all updated and ready."""
    path = f"{APPS}/deployments/{names.farm_name(name)}"
    deployment = await eventually(lambda: api.find(path), what="farm Deployment")
    replicas = deployment["spec"]["replicas"]
    await api.patch(
        f"{path}/status",
        {
            "status": {
                "observedGeneration": deployment["metadata"]["generation"],
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
            }
        },
    )


async def test_synthetic_service_gets_configmap_deployment_service_and_ready_status(
    api: TestApi, operator: Any
) -> None:
    await api.create(SERVICES, example_service("stripe"))
    farm = names.farm_name("stripe")

    configmap = await eventually(lambda: api.find(f"{NS}/configmaps/{farm}"), what="ConfigMap")
    deployment = await eventually(lambda: api.find(f"{APPS}/deployments/{farm}"), what="Deploy")
    service = await eventually(lambda: api.find(f"{NS}/services/{farm}"), what="Service")
    secret = await eventually(
        lambda: api.find(f"{NS}/secrets/{names.ADMIN_TOKEN_SECRET}"), what="admin Secret"
    )

    owner = await api.get(f"{SERVICES}/stripe")
    for child in (configmap, deployment, service):
        (ref,) = child["metadata"]["ownerReferences"]
        assert ref["uid"] == owner["metadata"]["uid"] and ref["controller"] is True
    served = yaml.safe_load(configmap["data"]["stripe.yaml"])
    assert served["id"] == "stripe" and "replicas" not in served
    assert secret["stringData"][names.ADMIN_TOKEN_KEY]
    assert service["spec"]["ports"][0]["port"] == names.FARM_PORT

    status = await eventually(lambda: status_of(api, f"{SERVICES}/stripe"), what="status")
    assert status["phase"] == "Progressing"
    assert status["endpoint"] == f"http://{farm}.{NAMESPACE}.svc:8001"
    assert ready_condition(status)["status"] == "False"

    await make_farm_ready(api, "stripe")

    async def is_ready() -> dict[str, Any] | None:
        status = await status_of(api, f"{SERVICES}/stripe")
        return status if status.get("phase") == "Ready" else None

    status = await eventually(is_ready, what="Ready phase")
    assert ready_condition(status)["status"] == "True"
    assert status["readyReplicas"] == 1
    assert status["observedGeneration"] == owner["metadata"]["generation"]
    assert status["authType"] == "api_key"  # stripe.yaml's auth.type
    assert status["rateLimitRps"] == example_service()["spec"]["rate_limit"]["max_rps"]


async def test_spec_change_rolls_out_and_delete_leaves_children_to_garbage_collection(
    api: TestApi, operator: Any
) -> None:
    await api.create(SERVICES, example_service("stripe"))
    farm_path = f"{APPS}/deployments/{names.farm_name('stripe')}"
    first = await eventually(lambda: api.find(farm_path), what="Deployment")
    first_hash = first["spec"]["template"]["metadata"]["annotations"][names.ANNOTATION_SPEC_HASH]
    await make_farm_ready(api, "stripe")

    await api.patch(
        f"{SERVICES}/stripe",
        {"spec": {"replicas": 0, "rate_limit": {"max_rps": 3}, "id": "stripe-two"}},
    )

    async def rolled() -> dict[str, Any] | None:
        deployment = await api.find(farm_path)
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        return deployment if annotations[names.ANNOTATION_SPEC_HASH] != first_hash else None

    deployment = await eventually(rolled, what="new pod template")
    assert deployment["spec"]["replicas"] == 0
    configmap = await api.get(f"{NS}/configmaps/{names.farm_name('stripe')}")
    assert list(configmap["data"]) == ["stripe.yaml"]  # one file: the farm serves one service
    served = yaml.safe_load(configmap["data"]["stripe.yaml"])
    assert served["rate_limit"]["max_rps"] == 3 and served["id"] == "stripe-two"

    async def progressing() -> dict[str, Any] | None:
        status = await status_of(api, f"{SERVICES}/stripe")
        return status if status.get("rateLimitRps") == 3 else None

    status = await eventually(progressing, what="status of generation 2")
    assert status["phase"] == "Progressing" and status["observedGeneration"] == 2

    await api.delete(f"{SERVICES}/stripe")
    # No finalizer: the resource goes at once and the children wait for the garbage collector
    # (which the emulator lacks), bound to it by their controller ownerReference.
    assert await api.find(f"{SERVICES}/stripe") is None
    assert deployment["metadata"]["ownerReferences"][0]["kind"] == names.SERVICE_KIND
    # A late event from the orphaned Deployment must not resurrect or break anything.
    await make_farm_ready(api, "stripe")
    await make_farm_ready(api, "stripe")
    assert await api.find(f"{SERVICES}/stripe") is None


async def test_invalid_service_spec_gets_a_condition_naming_the_field_and_no_children(
    api: TestApi, operator: Any
) -> None:
    bad = example_service("stripe")
    # Passes the CRD schema, fails the model: the drift step names a field that does not exist.
    bad["spec"]["drift_schedule"] = [
        {"after_calls": 5, "action": "remove", "resource": "invoices", "field": "no_such_field"}
    ]
    await api.create(SERVICES, bad)

    async def rejected() -> dict[str, Any] | None:
        status = await status_of(api, f"{SERVICES}/stripe")
        return status if status.get("phase") == "Invalid" else None

    status = await eventually(rejected, what="Invalid phase")
    ready = ready_condition(status)
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert "no_such_field" in ready["message"] and ready["message"].startswith("spec")
    farm = names.farm_name("stripe")
    for path in (f"{NS}/configmaps/{farm}", f"{APPS}/deployments/{farm}", f"{NS}/services/{farm}"):
        assert await api.find(path) is None


SUMMARY_PASSED = {
    "verdict": "PASSED",
    "profile": "full",
    "mode": "storm",
    "seed": 7,
    "duration_seconds": 30.2,
    "invariants": {"no_lost_writes": "pass", "no_duplicate_writes": "pass", "bounded_dlq": "pass"},
    "goodput_rps": 41.5,
    "attempts": 1520,
    "success_rate": 0.97,
    "dlq_entries": 3,
    "p99_seconds": 0.81,
}


async def ready_service(api: TestApi, service_id: str = "stripe") -> None:
    await api.create(SERVICES, example_service(service_id))
    await make_farm_ready(api, service_id)

    async def ready() -> bool:
        return (await status_of(api, f"{SERVICES}/{service_id}")).get("phase") == "Ready"

    await eventually(ready, what=f"{service_id} Ready")


async def wait_phase(api: TestApi, name: str, phase: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        status = await status_of(api, f"{SCENARIOS}/{name}")
        return status if status.get("phase") == phase else None

    return await eventually(reached, what=f"{name} phase {phase}")


async def finish_job(
    api: TestApi, job_name: str, exit_code: int, message: str, *, failed: bool
) -> None:
    """Play the Job controller and the kubelet: one runner pod terminated, the Job finished."""
    job = await api.get(f"{BATCH}/jobs/{job_name}")
    labels = {**job["spec"]["template"]["metadata"]["labels"], "job-name": job_name}
    await api.create(
        f"{NS}/pods",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{job_name}-abcde", "namespace": NAMESPACE, "labels": labels},
            "spec": copy.deepcopy(job["spec"]["template"]["spec"]),
            "status": {
                "phase": "Failed" if failed else "Succeeded",
                "containerStatuses": [
                    {
                        "name": "runner",
                        "state": {
                            "terminated": {
                                "exitCode": exit_code,
                                "reason": "Error" if failed else "Completed",
                                "message": message,
                            }
                        },
                    }
                ],
            },
        },
    )
    kind = "Failed" if failed else "Complete"
    await api.patch(
        f"{BATCH}/jobs/{job_name}/status",
        {
            "status": {
                "active": 0,
                "failed": int(failed),
                "succeeded": int(not failed),
                "completionTime": "2026-01-01T00:01:00Z",
                "conditions": [{"type": kind, "status": "True", "reason": "Finished"}],
            }
        },
    )


def job_creations(cluster: Any) -> list[str]:
    """Names of the Jobs the operator POSTed (409s included), in order."""
    return [
        request.data["metadata"]["name"]
        for request in list(cluster._requests)
        if request.method == "POST" and request.url.path.endswith("/jobs")
    ]


async def test_scenario_runs_one_job_and_reports_the_verdict(
    api: TestApi, cluster: Any, operator: Any
) -> None:
    await ready_service(api)
    await api.create(SCENARIOS, scenario("storm-run"))
    job_name = names.runner_job_name("storm-run", 1)

    status = await wait_phase(api, "storm-run", "Pending")
    assert status["jobName"] == job_name and status["mode"] == "storm"
    job = await api.get(f"{BATCH}/jobs/{job_name}")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert "stripe=http://synsvc-stripe.gauntlet-test.svc:8001" in container["command"]
    assert job["metadata"]["ownerReferences"][0]["kind"] == names.SCENARIO_KIND
    configmap = await api.get(f"{NS}/configmaps/{job_name}")
    document = yaml.safe_load(configmap["data"]["scenario.yaml"])
    assert document["name"] == "storm-run" and document["mode"] == "storm"
    assert configmap["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]

    await api.patch(f"{BATCH}/jobs/{job_name}/status", {"status": {"active": 1}})
    await wait_phase(api, "storm-run", "Running")

    await finish_job(api, job_name, 0, json.dumps(SUMMARY_PASSED), failed=False)
    status = await wait_phase(api, "storm-run", "Passed")
    assert status["verdict"] == "PASSED"
    assert status["scorecard"]["invariants"] == SUMMARY_PASSED["invariants"]
    assert status["scorecard"]["goodputRps"] == 41.5 and status["scorecard"]["p99Seconds"] == 0.81
    passed = next(c for c in status["conditions"] if c["type"] == "Passed")
    assert passed["status"] == "True"
    assert job_creations(cluster) == [job_name]


async def test_failed_verdict_names_the_broken_invariants(
    api: TestApi, cluster: Any, operator: Any
) -> None:
    await ready_service(api)
    await api.create(SCENARIOS, scenario("naive-run", profile={"base": "naive"}))
    job_name = (await wait_phase(api, "naive-run", "Pending"))["jobName"]
    summary = {
        **SUMMARY_PASSED,
        "verdict": "FAILED",
        "profile": "naive",
        "invariants": {
            "no_lost_writes": "fail",
            "no_duplicate_writes": "fail",
            "bounded_dlq": "not_exercised",
        },
        "failed": ["no_duplicate_writes", "no_lost_writes"],
    }
    await finish_job(api, job_name, 1, json.dumps(summary), failed=True)
    status = await wait_phase(api, "naive-run", "Failed")
    assert status["verdict"] == "FAILED"
    assert "no_duplicate_writes" in status["message"] and "no_lost_writes" in status["message"]
    assert status["scorecard"]["invariants"]["no_lost_writes"] == "fail"
    assert status["scorecard"]["invariants"]["bounded_dlq"] == "not_exercised"


async def test_scenario_naming_a_missing_service_waits_with_a_clear_condition(
    api: TestApi, cluster: Any, operator: Any
) -> None:
    await api.create(SCENARIOS, scenario("lonely", services=["nowhere"]))
    status = await wait_phase(api, "lonely", "Pending")
    accepted = next(c for c in status["conditions"] if c["type"] == "Accepted")
    assert accepted["status"] == "False" and accepted["reason"] == "ServiceNotFound"
    assert "spec.services[0]" in accepted["message"] and "'nowhere'" in accepted["message"]
    assert job_creations(cluster) == []

    async def warning_event() -> list[dict[str, Any]]:
        events = (await api.get(f"{NS}/events")).get("items", [])
        return [e for e in events if e.get("involvedObject", {}).get("name") == "lonely"]

    # `kubectl describe gsc lonely` shows why it waits.
    (event, *_) = await eventually(warning_event, what="a Warning event on the scenario")
    assert event["type"] == "Warning" and "nowhere" in event["message"]


async def test_invalid_scenario_spec_is_an_error_with_the_field_path_and_no_job(
    api: TestApi, cluster: Any, operator: Any
) -> None:
    await ready_service(api)
    # The CRD keeps workflow params free-form; the model allows only scalars.
    bad = scenario(
        "bad-params", workflows=[{"name": "idempotent_write", "params": {"x": {"a": 1}}}]
    )
    await api.create(SCENARIOS, bad)
    status = await wait_phase(api, "bad-params", "Error")
    accepted = next(c for c in status["conditions"] if c["type"] == "Accepted")
    assert accepted["reason"] == "InvalidSpec"
    assert "spec.workflows[0].params.x" in accepted["message"]
    assert job_creations(cluster) == []


async def test_new_generation_replaces_the_job_and_restart_never_duplicates_it(
    api: TestApi, cluster: Any, kubeconfig: Path
) -> None:
    async with running_operator():
        await ready_service(api)
        await api.create(SCENARIOS, scenario("replay"))
        first = (await wait_phase(api, "replay", "Pending"))["jobName"]
        await api.patch(f"{SCENARIOS}/replay", {"spec": {"mode": "hell"}})

        async def second_generation() -> dict[str, Any] | None:
            status = await status_of(api, f"{SCENARIOS}/replay")
            return status if status.get("observedGeneration") == 2 else None

        second = (await eventually(second_generation, what="generation 2"))["jobName"]
        assert second == names.runner_job_name("replay", 2) != first
        await eventually(lambda: _gone(api, f"{BATCH}/jobs/{first}"), what="old Job deleted")

    # While the operator is down, the Job finishes.
    await finish_job(api, second, 0, json.dumps(SUMMARY_PASSED), failed=False)

    async with running_operator():
        status = await wait_phase(api, "replay", "Passed")
        assert status["mode"] == "hell" and status["jobName"] == second
    # One POST per generation, none from the restart.
    assert job_creations(cluster) == [first, second]


async def _gone(api: TestApi, path: str) -> bool:
    return await api.find(path) is None


async def test_a_job_left_by_a_crashed_operator_is_adopted_not_duplicated(
    api: TestApi, cluster: Any, operator: Any
) -> None:
    await ready_service(api)
    # An operator that crashed after creating generation 1's Job, before writing status.
    job_name = names.runner_job_name("crashed", 1)
    await api.create(
        f"{BATCH}/jobs",
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": job_name, "namespace": NAMESPACE},
            "spec": {"template": {"spec": {"containers": [], "restartPolicy": "Never"}}},
        },
    )
    await api.create(SCENARIOS, scenario("crashed"))
    status = await wait_phase(api, "crashed", "Pending")
    assert status["jobName"] == job_name
    existing = await api.get(f"{BATCH}/jobs/{job_name}")
    configmap = await api.get(f"{NS}/configmaps/{job_name}")
    assert configmap["metadata"]["ownerReferences"][0]["uid"] == existing["metadata"]["uid"]
    # The operator looked the Job up first and carried on with it: no second creation.
    assert job_creations(cluster) == [job_name]


async def test_deleting_a_running_scenario_leaves_its_job_to_garbage_collection(
    api: TestApi, cluster: Any, operator: Any
) -> None:
    await ready_service(api)
    await api.create(SCENARIOS, scenario("short-lived"))
    job_name = (await wait_phase(api, "short-lived", "Pending"))["jobName"]
    await api.delete(f"{SCENARIOS}/short-lived")
    assert await api.find(f"{SCENARIOS}/short-lived") is None  # no finalizer holds it
    job = await api.get(f"{BATCH}/jobs/{job_name}")
    (ref,) = job["metadata"]["ownerReferences"]
    assert ref["kind"] == names.SCENARIO_KIND and ref["controller"] is True
    # The orphaned Job finishing (the emulator has no garbage collector) changes nothing.
    await finish_job(api, job_name, 0, json.dumps(SUMMARY_PASSED), failed=False)
    await api.patch(f"{BATCH}/jobs/{job_name}/status", {"status": {"succeeded": 1}})
    assert await api.find(f"{SCENARIOS}/short-lived") is None
    assert job_creations(cluster) == [job_name]


def test_rbac_grants_exactly_the_calls_the_operator_made(request: pytest.FixtureRequest) -> None:
    """Least privilege, both ways: runs last in this module, over the calls of all tests above."""
    others = [
        item.nodeid
        for item in request.session.items
        if getattr(item, "module", None) is request.module and item.nodeid != request.node.nodeid
    ]
    if len(others) < EXERCISING_TESTS or not set(others) <= PASSED:
        pytest.skip("needs every other test of this module to have run and passed first")
    grants = rbac_grants(RBAC)
    # Admission, not calls: blockOwnerDeletion needs update on the owners' finalizers where
    # OwnerReferencesPermissionEnforcement runs (proven in tests/controlplane).
    owners = {
        (names.GROUP, f"{names.SERVICE_PLURAL}/finalizers", "update"),
        (names.GROUP, f"{names.SCENARIO_PLURAL}/finalizers", "update"),
        ("batch", "jobs/finalizers", "update"),
    }
    assert owners <= grants
    assert grants - owners == SEEN_CALLS


#: The tests above that, together, exercise every API call the operator makes.
EXERCISING_TESTS = 10
