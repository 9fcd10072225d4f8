"""Test kit for the operator tests: kmock's emulated Kubernetes API, made kopf-worthy, and the
real kopf operator running against it.

kmock's ``KubernetesEmulator`` stores objects and serves list/watch/create/patch/delete, but sets
no uid, resourceVersion, generation or timestamps, answers a failed JSON-patch ``test`` with 500
(kopf expects 422) and leaves kind/apiVersion off lists. :class:`ClusterEmulator` adds those, the
way an API server does, so kopf runs its normal code paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import jsonpatch
import kmock
import yaml
from gauntlet_operator import names
from kmock._internal import dicts, enums, rendering

RESOURCES: dict[str, tuple[str, bool, set[str]]] = {
    # 'group/version/plural': (kind, namespaced, subresources)
    f"{names.API_VERSION}/{names.SERVICE_PLURAL}": (names.SERVICE_KIND, True, {"status"}),
    f"{names.API_VERSION}/{names.SCENARIO_PLURAL}": (names.SCENARIO_KIND, True, {"status"}),
    "v1/namespaces": ("Namespace", False, set()),
    "v1/events": ("Event", True, set()),
    "v1/configmaps": ("ConfigMap", True, set()),
    "v1/secrets": ("Secret", True, set()),
    "v1/services": ("Service", True, {"status"}),
    "v1/pods": ("Pod", True, {"status"}),
    "apps/v1/deployments": ("Deployment", True, {"status"}),
    "batch/v1/jobs": ("Job", True, {"status"}),
    "apiextensions.k8s.io/v1/customresourcedefinitions": ("CustomResourceDefinition", False, set()),
}
VERBS = {"get", "list", "watch", "create", "patch", "delete"}
RBAC = Path(__file__).resolve().parents[2] / "deploy" / "kind" / "operator" / "rbac.yaml"
#: Every API call any e2e test saw the operator make (for the "no unused grant" check).
SEEN_CALLS: set[tuple[str, str, str]] = set()
#: Node ids of the tests that passed in this session.
PASSED: set[str] = set()
NAMESPACE = "gauntlet-test"


class ClusterEmulator(kmock.KubernetesEmulator):
    """KubernetesEmulator that stamps metadata like an API server and speaks kopf's dialect."""

    _versions = itertools.count(1)

    async def _handle(self, request: rendering.Request) -> Any:
        if request.resource is not None and isinstance(request.data, dict | list):
            if request.action == enums.action.CREATE and isinstance(request.data, dict):
                self._stamp_create(request)
            elif request.action == enums.action.UPDATE and request.name is not None:
                self._stamp_patch(request)
        return await super()._handle(request)

    def _stamp_create(self, request: rendering.Request) -> None:
        meta = request.data.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta["resourceVersion"] = str(next(self._versions))
        meta.setdefault("generation", 1)
        meta.setdefault(
            "creationTimestamp", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        if request.namespace:
            meta.setdefault("namespace", request.namespace)

    def _stamp_patch(self, request: rendering.Request) -> None:
        key: Any = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return  # the emulator answers 404 itself
        current = dict(self.objects[key].raw)
        try:
            patched = dicts.patch_dict(current, request.data)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            # The API server's answer to a failed JSON-patch "test": 422, which kopf handles.
            raise kmock.KubernetesError(status=422, reason="Invalid", message=str(exc)) from exc
        meta = current.get("metadata", {})
        stamps: dict[str, Any] = {"resourceVersion": str(next(self._versions))}
        if request.subresource is None and patched.get("spec") != current.get("spec"):
            stamps["generation"] = int(meta.get("generation", 1)) + 1
        if isinstance(request.data, dict):
            request.data.setdefault("metadata", {}).update(stamps)
        else:
            for field, value in stamps.items():
                request.data.append({"op": "add", "path": f"/metadata/{field}", "value": value})

    async def _serve_list(self, request: rendering.Request) -> Any:
        payload: Any = await super()._serve_list(request)
        payload["metadata"]["resourceVersion"] = str(next(self._versions))
        return {"apiVersion": "v1", "kind": "List", **payload}


@contextlib.asynccontextmanager
async def running_operator() -> AsyncIterator[Any]:
    """The real operator (``kopf run -m gauntlet_operator.handlers``) in its own thread."""
    from kopf.testing import KopfRunner

    runner = KopfRunner(
        ["run", "--standalone", "--all-namespaces", "-m", "gauntlet_operator.handlers"],
        timeout=30,
    )
    runner.__enter__()
    try:
        yield runner
    finally:
        # Stop from a worker thread: the emulator lives on this loop and must keep serving
        # while kopf shuts down.
        await asyncio.to_thread(runner.__exit__, None, None, None)


async def eventually(
    check: Callable[[], Any | Awaitable[Any]], *, within: float = 20, what: str = ""
) -> Any:
    """Poll ``check`` until it returns something truthy; bounded in time and count."""
    deadline = time.monotonic() + within
    last: Any = None
    for _ in range(int(within / 0.05) + 1):
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check} (last: {last!r})")


class TestApi:
    """What a test (or kubectl) does to the emulated cluster, over HTTP so watches see it."""

    __test__ = False  # not a test class

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    async def _call(self, method: str, path: str, body: Any = None, ctype: str = "") -> Any:
        import aiohttp

        headers = {"Content-Type": ctype or "application/json"} if body is not None else {}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.url + path, json=body, headers=headers) as resp,
        ):
            data = await resp.json(content_type=None)
            if resp.status >= 300:
                raise AssertionError(f"{method} {path}: {resp.status} {data}")
            return data

    async def create(self, collection: str, body: dict[str, Any]) -> Any:
        return await self._call("POST", collection, body)

    async def get(self, path: str) -> Any:
        return await self._call("GET", path)

    async def find(self, path: str) -> Any:
        """The object, or ``None`` if it does not exist."""
        import aiohttp

        async with aiohttp.ClientSession() as session, session.get(self.url + path) as resp:
            return await resp.json() if resp.status == 200 else None

    async def patch(self, path: str, body: dict[str, Any]) -> Any:
        return await self._call("PATCH", path, body, "application/merge-patch+json")

    async def delete(self, path: str) -> Any:
        return await self._call("DELETE", path)


_VERBS = {
    enums.action.LIST: "list",
    enums.action.WATCH: "watch",
    enums.action.FETCH: "get",
    enums.action.CREATE: "create",
    enums.action.UPDATE: "patch",
    enums.action.DELETE: "delete",
}


def operator_api_calls(cluster: ClusterEmulator) -> set[tuple[str, str, str]]:
    """``(apiGroup, resource[/subresource], verb)`` of every call the operator made.

    The operator's calls come from kopf and from the kubernetes client; the test's own calls
    (aiohttp's default user agent) are not counted.
    """
    calls = set()
    for request in list(cluster._requests):
        agent = request.headers.get("User-Agent", "")
        if request.resource is None or not agent.startswith(("kopf/", "OpenAPI-Generator/")):
            continue
        if not request.resource.plural:
            continue  # API discovery (/apis/group/version): open to every authenticated user
        if request.action not in _VERBS:
            continue
        resource = request.resource.plural
        if request.subresource:
            resource = f"{resource}/{request.subresource}"
        calls.add((request.resource.group or "", resource, _VERBS[request.action]))
    return calls


def rbac_grants(rbac_file: Path) -> set[tuple[str, str, str]]:
    """``(apiGroup, resource, verb)`` triples a ClusterRole/Role file grants."""
    grants = set()
    for doc in yaml.safe_load_all(rbac_file.read_text()):
        if not doc or doc.get("kind") not in ("ClusterRole", "Role"):
            continue
        for rule in doc["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        grants.add((group, resource, verb))
    return grants


def custom_resource_problems(cluster: ClusterEmulator) -> list[str]:
    """Stored custom resources (status included) that the CRD schema would reject.

    The emulator validates nothing; a real API server would refuse a status the schema does
    not allow, so every status the operator wrote is checked here against the generated CRDs.
    """
    import jsonschema
    from gauntlet_operator.schema import as_json_schema

    crd_dir = Path(__file__).resolve().parents[2] / "crds"
    validators = {}
    for plural in (names.SERVICE_PLURAL, names.SCENARIO_PLURAL):
        crd = yaml.safe_load((crd_dir / f"{plural}.yaml").read_text())
        (version,) = crd["spec"]["versions"]
        schema = as_json_schema(version["schema"]["openAPIV3Schema"])
        schema["properties"]["metadata"].pop("additionalProperties", None)
        validators[plural] = jsonschema.Draft4Validator(schema)
    problems = []
    for (resource, _, name), obj in cluster.objects.items():
        plural = getattr(resource, "plural", None)
        if plural not in validators or obj.deleted:
            continue
        for error in validators[plural].iter_errors(dict(obj.raw)):
            where = ".".join(str(p) for p in error.absolute_path)
            problems.append(f"{plural}/{name}: {where}: {error.message}")
    return problems
