"""A small JSON-in, JSON-out Kubernetes API client for the handlers.

It rides on the official client's configuration and transport (in-cluster service account or a
kubeconfig, client certificates, CA) but sends and returns plain dicts: the manifests are
already dicts, and the typed models add nothing but conversions.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import kubernetes

MERGE_PATCH = "application/merge-patch+json"


class ApiError(Exception):
    """A non-2xx answer from the API server."""

    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        self.status = status
        self.reason = ""
        self.message = body[:500]
        try:
            payload = json.loads(body)
            self.reason = str(payload.get("reason", ""))
            self.message = str(payload.get("message", self.message))[:500]
        except (ValueError, AttributeError):
            pass
        super().__init__(f"{method} {path}: {status} {self.reason} {self.message}".strip())


def load_configuration() -> kubernetes.client.Configuration:
    """In-cluster service account first, then the kubeconfig named by $KUBECONFIG *now*.

    The kubernetes package reads $KUBECONFIG once at import; reading it here instead lets tests
    (and anyone embedding the operator) point it somewhere else later.
    """
    config = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=config)  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=os.environ.get("KUBECONFIG") or None, client_configuration=config
        )
    return config


@dataclass
class KubeApi:
    """Plain-dict access to the API server: create, get, list, merge-patch, delete."""

    configuration: kubernetes.client.Configuration

    def __post_init__(self) -> None:
        self._client = kubernetes.client.ApiClient(self.configuration)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """One API call; raises :class:`ApiError` on any non-2xx answer."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        params = self._client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self._client.call_api(*params, _request_timeout=(10, 30))
        data = response.read()
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data or "")
        if not 200 <= response.status < 300:
            raise ApiError(response.status, method, path, text)
        return json.loads(text) if text else {}

    def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.request("POST", path, dict(body))

    def get(self, path: str) -> dict[str, Any]:
        return self.request("GET", path)

    def list(self, path: str, label_selector: Mapping[str, str] | None = None) -> list[Any]:
        """Items of a collection; the label selector is also applied here, client-side."""
        selector = label_selector or {}
        query = {"labelSelector": ",".join(f"{k}={v}" for k, v in selector.items())}
        items = self.request("GET", path, query=query if selector else None).get("items") or []
        return [
            item
            for item in items
            if all(
                (item.get("metadata", {}).get("labels") or {}).get(k) == v
                for k, v in selector.items()
            )
        ]

    def patch(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.request("PATCH", path, dict(body), content_type=MERGE_PATCH)

    def delete(self, path: str, propagation: str = "Background") -> dict[str, Any]:
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        return self.request("DELETE", path, body)


def collection_path(api_version: str, plural: str, namespace: str) -> str:
    """``/api/v1/namespaces/ns/configmaps`` or ``/apis/group/v/namespaces/ns/plural``."""
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{prefix}/namespaces/{quote(namespace)}/{plural}"


def object_path(api_version: str, plural: str, namespace: str, name: str) -> str:
    return f"{collection_path(api_version, plural, namespace)}/{quote(name)}"


_PLURALS = {
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "Service": "services",
    "Deployment": "deployments",
    "Job": "jobs",
    "Pod": "pods",
}


def manifest_path(manifest: Mapping[str, Any], *, collection: bool = False) -> str:
    """API path of a built-in manifest (or of its collection)."""
    meta = manifest["metadata"]
    plural = _PLURALS[manifest["kind"]]
    if collection:
        return collection_path(manifest["apiVersion"], plural, meta["namespace"])
    return object_path(manifest["apiVersion"], plural, meta["namespace"], meta["name"])


def create_or_patch(api: KubeApi, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Create the object; if it exists (409), merge-patch it to the desired state."""
    try:
        return api.create(manifest_path(manifest, collection=True), manifest)
    except ApiError as exc:
        if exc.status != 409:
            raise
    return api.patch(manifest_path(manifest), manifest)


def create_if_absent(api: KubeApi, manifest: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """Create the object unless it exists; ``(object or {}, created)``. Never overwrites."""
    try:
        return api.create(manifest_path(manifest, collection=True), manifest), True
    except ApiError as exc:
        if exc.status != 409:
            raise
    return {}, False


_lock = threading.Lock()
_api: KubeApi | None = None


def set_api(api: KubeApi) -> None:
    """Install the client the handlers use (done at login)."""
    global _api
    with _lock:
        _api = api


def api() -> KubeApi:
    """The client installed at login; a fresh one from the environment if login has not run."""
    global _api
    with _lock:
        if _api is None:
            _api = KubeApi(load_configuration())
        return _api
