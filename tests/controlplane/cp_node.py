"""A node for the loopback control plane: runs the operator's pods as processes on this machine.

It plays the kubelet (bind, start, probe, report status, terminate), cluster DNS and kube-proxy
for the pods labelled ``app.kubernetes.io/managed-by: gauntlet-operator`` in the namespaces it
is given:

- **Binding**: an unscheduled pod is bound to this node through the ``pods/binding`` subresource
  (the scheduler's call).
- **Volumes**: ``configMap``, ``projected`` (configMap and secret sources), ``secret`` and
  ``emptyDir`` volumes become directories under the pod's root, filled from the API server.
- **Process**: the container's ``command`` + ``args`` and ``env`` (``value``, ``secretKeyRef``,
  ``configMapKeyRef``, ``fieldRef``) run as a subprocess with the image's ``PATH`` (this venv's
  ``bin``), as the pod's ``runAsUser``/``runAsGroup`` with ``fsGroup`` as a supplementary group
  when this venv's Python can run as that user (not when it lives under a 0700 home such as
  pyenv's /root; then as the test's user); ConfigMap and Secret files are read-only (0444 in
  0555 folders); writable emptyDirs are owned by the fsGroup.
  Absolute paths under a ``mountPath`` (and the termination-message path) are rebased onto
  the pod's root: a container sees its own filesystem, the process sees the same files here.
- **Network**: each pod gets its own loopback address (127.N.x.y in a /16 picked at random per
  node, skipping addresses whose container ports are taken; its ``podIP``); an argument
  binding ``0.0.0.0`` binds the pod's address instead (a network namespace's "all
  interfaces"). ``<service>.<namespace>.svc[.cluster.local]:<port>`` in arguments and env
  values resolves, at container start, to a Ready endpoint of that Service (the selector's
  ready pods, the named ``targetPort``): DNS and kube-proxy in one step.
- **Status**: Running with ``podIP`` and conditions; Ready once the readiness probe's
  ``httpGet`` answers 2xx/3xx; on exit the termination message (the file, at most 4096 bytes,
  or with ``FallbackToLogsOnError`` the log tail when the file is empty and the exit code is not
  0), ``exitCode``, ``Succeeded`` or ``Failed`` (``restartPolicy: Never``), or a restart
  (``Always``).
- **Deletion**: a pod with a ``deletionTimestamp`` gets SIGTERM, SIGKILL after its grace period
  (at most 10 s), then is deleted with grace period 0, as a kubelet confirms.

Not emulated: liveness probes, resource limits, image pulls, read-only root filesystems (the
process can write outside its mounts), more than one container, init containers.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cp_cluster import die_with_parent
from gauntlet_operator import names
from gauntlet_operator.kube import ApiError, KubeApi

log = logging.getLogger("cp_node")

NODE_NAME = "gauntlet-process-node"
HOST_IP = "127.0.0.1"
TICK = 0.3
MAX_MESSAGE = 4096
FALLBACK_LINES = 80
FALLBACK_BYTES = 2048
_SERVICE_HOST = re.compile(
    r"(?P<svc>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\.(?P<ns>[a-z0-9]([-a-z0-9]*[a-z0-9])?)"
    r"\.svc(\.cluster\.local)?:(?P<port>\d+)"
)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bindable(ip: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((ip, port))
        except OSError:
            return False
    return True


class NotStartable(Exception):
    """The container cannot start yet (a missing ConfigMap or Secret): retried next tick."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class PodProcess:
    """One pod's container, run as a process."""

    namespace: str
    name: str
    uid: str
    ip: str
    root: Path
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    user: tuple[int | None, int | None, list[int]] = (None, None, [])
    termination_path: Path | None = None
    fallback_to_logs: bool = False
    restart_always: bool = False
    probe: tuple[str, int] | None = None  # (path, port) of the readiness httpGet
    popen: subprocess.Popen[bytes] | None = None
    started_at: str = ""
    ready: bool = False
    restarts: int = 0
    finished: bool = False

    @property
    def log_path(self) -> Path:
        return self.root / "container.log"

    def spawn(self) -> None:
        uid, gid, groups = self.user
        with self.log_path.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.env.get("HOME") or str(self.root),
                user=uid,
                group=gid,
                extra_groups=groups or None,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        self.started_at = now()
        self.ready = self.probe is None

    def kill(self, grace: float) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def termination_message(self, exit_code: int) -> str:
        message = ""
        if self.termination_path and self.termination_path.exists():
            message = self.termination_path.read_bytes()[:MAX_MESSAGE].decode("utf-8", "replace")
        if not message and self.fallback_to_logs and exit_code != 0:
            lines = self.log_path.read_bytes().splitlines()[-FALLBACK_LINES:]
            message = b"\n".join(lines)[-FALLBACK_BYTES:].decode("utf-8", "replace")
        return message


class ProcessNode:
    """Plays the node for the operator's pods in :attr:`namespaces` (add to it per test)."""

    def __init__(self, api: KubeApi, root: Path, bin_dir: Path | None = None) -> None:
        self.api = api
        self.root = root
        self.bin_dir = bin_dir or Path(sys.executable).parent
        self.namespaces: set[str] = set()
        self.pods: dict[str, PodProcess] = {}
        self._next_ip = 0
        self._octet = random.randint(2, 254)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="process-node", daemon=True)
        self.errors: list[str] = []
        self._runnable: dict[int, bool] = {}

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> ProcessNode:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        self._register_node()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        for pod in list(self.pods.values()):
            pod.kill(5)

    def _register_node(self) -> None:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": NODE_NAME, "labels": {"kubernetes.io/hostname": NODE_NAME}},
        }
        with contextlib.suppress(ApiError):
            self.api.create("/api/v1/nodes", node)
        ready = {
            "type": "Ready",
            "status": "True",
            "reason": "ProcessNodeReady",
            "message": "pods run as processes on the test machine",
            "lastHeartbeatTime": now(),
            "lastTransitionTime": now(),
        }
        status = {"conditions": [ready], "addresses": [{"type": "InternalIP", "address": HOST_IP}]}
        self.api.patch(f"/api/v1/nodes/{NODE_NAME}/status", {"status": status})

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as exc:  # reported by the tests; the node keeps going
                log.exception("process node tick failed")
                self.errors.append(repr(exc))
            self._stop.wait(TICK)

    # --- one pass -------------------------------------------------------------------------

    def tick(self) -> None:
        seen: set[str] = set()
        for namespace in sorted(self.namespaces):
            pods = self.api.list(
                f"/api/v1/namespaces/{namespace}/pods",
                {names.LABEL_MANAGED_BY: names.MANAGED_BY},
            )
            for pod in pods:
                seen.add(pod["metadata"]["uid"])
                self._handle(pod)
        for uid in [u for u in self.pods if u not in seen]:
            self.pods.pop(uid).kill(2)  # deleted without us (grace 0 or unbound)

    def _handle(self, pod: dict[str, Any]) -> None:
        meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
        uid = meta["uid"]
        if meta.get("deletionTimestamp"):
            self._terminate(pod)
            return
        if not spec.get("nodeName"):
            self._bind(pod)
            return
        if spec.get("nodeName") != NODE_NAME:
            return
        running = self.pods.get(uid)
        if running is None:
            if status.get("phase") in ("Succeeded", "Failed"):
                return
            self._start(pod)
            return
        if running.finished:
            return
        self._observe(pod, running)

    def _bind(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": NODE_NAME},
        }
        try:
            self.api.create(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/binding", binding
            )
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise

    def _terminate(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        running = self.pods.pop(meta["uid"], None)
        if running is not None:
            grace = min(float(meta.get("deletionGracePeriodSeconds") or 0), 10.0)
            running.kill(grace)
        if not pod["spec"].get("nodeName"):
            return  # the API server deletes unbound pods at once
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": meta["uid"]},
        }
        try:
            self.api.request(
                "DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}", body
            )
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise

    # --- starting a container -------------------------------------------------------------

    def _allocate_ip(self, ports: list[int]) -> str:
        """A loopback address of this node's own /16 whose container ports are free.

        Other test sessions on the machine run nodes too: each picks a random /16, and an
        address whose port is taken (by anyone) is skipped, so no pod reaches another's farm.
        """
        for _ in range(1000):
            self._next_ip += 1
            n = self._next_ip
            ip = f"127.{self._octet}.{n // 250 % 250}.{n % 250 + 1}"
            if all(_bindable(ip, port) for port in ports):
                return ip
        raise RuntimeError("no free loopback address for a pod")

    def _start(self, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        namespace, name = meta["namespace"], meta["name"]
        (container,) = spec["containers"]
        if spec.get("initContainers"):
            raise NotImplementedError(f"{namespace}/{name}: init containers are not emulated")
        root = self.root / namespace / f"{name}-{meta['uid'][:8]}"
        security = spec.get("securityContext") or {}
        csecurity = container.get("securityContext") or {}
        uid = csecurity.get("runAsUser", security.get("runAsUser"))
        gid = csecurity.get("runAsGroup", security.get("runAsGroup"))
        fs_group = security.get("fsGroup")
        if uid is not None and not self._can_run_as(uid, gid):
            uid, gid = None, None  # see _can_run_as
        process = PodProcess(
            namespace=namespace,
            name=name,
            uid=meta["uid"],
            ip="",
            root=root,
            user=(uid, gid, [fs_group] if fs_group is not None else []),
            fallback_to_logs=container.get("terminationMessagePolicy") == "FallbackToLogsOnError",
            restart_always=spec.get("restartPolicy", "Always") == "Always",
        )
        try:
            mounts = self._materialize(pod, container, root, fs_group)
            declared = [int(p["containerPort"]) for p in container.get("ports") or []]
            process.ip = self._allocate_ip(declared)
            term_in_pod = container.get("terminationMessagePath") or "/dev/termination-log"
            process.termination_path = root / "termination-log"
            process.termination_path.write_bytes(b"")
            process.termination_path.chmod(0o666)
            mounts.append((term_in_pod, process.termination_path))
            process.env = self._environment(pod, container, process.ip, mounts)
            argv = [*container.get("command", []), *container.get("args", [])]
            process.argv = [self._rewrite(a, namespace, process.ip, mounts) for a in argv]
        except NotStartable as exc:
            self._patch_status(pod, self._waiting_status(container, exc))
            return
        probe = (container.get("readinessProbe") or {}).get("httpGet")
        if probe:
            process.probe = (probe.get("path", "/"), self._port(container, probe["port"]))
        process.spawn()
        self.pods[meta["uid"]] = process
        self._patch_status(pod, self._running_status(container, process))

    def _can_run_as(self, uid: int, gid: int | None) -> bool:
        """Whether this venv's Python runs as ``uid`` (not when it lives under a 0700 home,
        e.g. pyenv in /root); if not, pods run as the test's own user, and :attr:`run_as`
        says so."""
        if uid not in self._runnable:
            try:
                probe = subprocess.run(
                    [str(self.bin_dir / "python"), "-c", "import gauntlet_operator"],
                    user=uid,
                    group=gid,
                    capture_output=True,
                    timeout=60,
                    check=False,
                    cwd="/",
                )
                self._runnable[uid] = probe.returncode == 0
            except (PermissionError, OSError):
                self._runnable[uid] = False
        return self._runnable[uid]

    def _materialize(
        self, pod: dict[str, Any], container: dict[str, Any], root: Path, fs_group: int | None
    ) -> list[tuple[str, Path]]:
        """Fill each mounted volume's directory; return (mountPath, host dir), longest first."""
        namespace = pod["metadata"]["namespace"]
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        mounts: list[tuple[str, Path]] = []
        for mount in container.get("volumeMounts") or []:
            volume = volumes[mount["name"]]
            host = root / "volumes" / mount["name"]
            host.mkdir(parents=True, exist_ok=True)
            root.chmod(0o755)
            (root / "volumes").chmod(0o755)
            if "emptyDir" in volume:
                if fs_group is not None:
                    os.chown(host, 0, fs_group)
                host.chmod(0o2777 if fs_group is None else 0o2775)
            else:
                for key, data in self._volume_files(namespace, volume).items():
                    (host / key).write_bytes(data)
                    (host / key).chmod(0o444)
                host.chmod(0o555)
            mounts.append((mount["mountPath"].rstrip("/"), host))
        return sorted(mounts, key=lambda m: -len(m[0]))

    def _volume_files(self, namespace: str, volume: dict[str, Any]) -> dict[str, bytes]:
        if "configMap" in volume:
            return self._configmap_files(namespace, volume["configMap"])
        if "secret" in volume:
            return self._secret_files(namespace, volume["secret"]["secretName"])
        if "projected" in volume:
            files: dict[str, bytes] = {}
            for source in volume["projected"]["sources"]:
                if "configMap" in source:
                    files.update(self._configmap_files(namespace, source["configMap"]))
                elif "secret" in source:
                    files.update(self._secret_files(namespace, source["secret"]["name"]))
                else:
                    raise NotImplementedError(f"projected source {sorted(source)}")
            return files
        raise NotImplementedError(f"volume type {sorted(volume)}")

    def _configmap_files(self, namespace: str, ref: dict[str, Any]) -> dict[str, bytes]:
        configmap = self._get("configmaps", namespace, ref["name"], "CreateContainerConfigError")
        data = {k: v.encode() for k, v in (configmap.get("data") or {}).items()}
        data.update(
            {k: base64.b64decode(v) for k, v in (configmap.get("binaryData") or {}).items()}
        )
        if ref.get("items"):
            return {item["path"]: data[item["key"]] for item in ref["items"]}
        return data

    def _secret_files(self, namespace: str, name: str) -> dict[str, bytes]:
        secret = self._get("secrets", namespace, name, "CreateContainerConfigError")
        return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}

    def _get(self, plural: str, namespace: str, name: str, reason: str) -> dict[str, Any]:
        try:
            return self.api.get(f"/api/v1/namespaces/{namespace}/{plural}/{name}")
        except ApiError as exc:
            if exc.status == 404:
                raise NotStartable(reason, f'{plural[:-1]} "{name}" not found') from exc
            raise

    def _environment(
        self,
        pod: dict[str, Any],
        container: dict[str, Any],
        ip: str,
        mounts: list[tuple[str, Path]],
    ) -> dict[str, str]:
        namespace = pod["metadata"]["namespace"]
        home = next((str(host) for path, host in mounts if path == "/tmp"), str(mounts[-1][1]))
        env = {
            "PATH": f"{self.bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "HOME": home,
            "TMPDIR": home,
            "HOSTNAME": pod["metadata"]["name"],
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        fields = {
            "metadata.name": pod["metadata"]["name"],
            "metadata.namespace": namespace,
            "status.podIP": ip,
            "spec.nodeName": NODE_NAME,
        }
        for item in container.get("env") or []:
            source = item.get("valueFrom")
            if source is None:
                value = item.get("value", "")
            elif "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                files = self._secret_files(namespace, ref["name"])
                if ref["key"] not in files:
                    raise NotStartable(
                        "CreateContainerConfigError",
                        f"couldn't find key {ref['key']} in Secret {namespace}/{ref['name']}",
                    )
                value = files[ref["key"]].decode()
            elif "configMapKeyRef" in source:
                ref = source["configMapKeyRef"]
                value = self._configmap_files(namespace, {"name": ref["name"]})[ref["key"]].decode()
            elif "fieldRef" in source:
                value = fields[source["fieldRef"]["fieldPath"]]
            else:
                raise NotImplementedError(f"env source {sorted(source)}")
            env[item["name"]] = self._rewrite(value, namespace, ip, [])
        return env

    def _rewrite(self, arg: str, namespace: str, ip: str, mounts: list[tuple[str, Path]]) -> str:
        """What ``arg`` means inside the pod, for a process on this machine."""
        if arg == "0.0.0.0":
            return ip
        arg = _SERVICE_HOST.sub(lambda m: self._resolve(m, namespace), arg)
        prefix, _eq, path = arg.rpartition("=") if arg.startswith("--") else ("", "", arg)
        if path.startswith("/"):
            for in_pod, host in mounts:
                if path == in_pod or path.startswith(in_pod + "/"):
                    rebased = str(host) + path[len(in_pod) :]
                    return f"{prefix}={rebased}" if prefix else rebased
        return arg

    def _resolve(self, match: re.Match[str], namespace: str) -> str:
        """``svc.ns.svc:port`` -> ``podIP:targetPort`` of a Ready endpoint (DNS + kube-proxy)."""
        svc_ns, svc_name, port = match["ns"], match["svc"], int(match["port"])
        try:
            service = self.api.get(f"/api/v1/namespaces/{svc_ns}/services/{svc_name}")
        except ApiError as exc:
            if exc.status == 404:
                return match.group(0)  # NXDOMAIN: the process finds out itself
            raise
        spec = service["spec"]
        entry = next((p for p in spec.get("ports") or [] if p.get("port") == port), None)
        if entry is None or not spec.get("selector"):
            return match.group(0)
        pods = self.api.list(f"/api/v1/namespaces/{svc_ns}/pods", spec["selector"])
        for pod in pods:
            status = pod.get("status") or {}
            ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or []
            )
            if ready and status.get("podIP") and not pod["metadata"].get("deletionTimestamp"):
                (container,) = pod["spec"]["containers"]
                target = self._port(container, entry.get("targetPort", port))
                return f"{status['podIP']}:{target}"
        return match.group(0)

    @staticmethod
    def _port(container: dict[str, Any], port: int | str) -> int:
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for declared in container.get("ports") or []:
            if declared.get("name") == port:
                return int(declared["containerPort"])
        raise NotStartable("InvalidPort", f"no container port named {port!r}")

    # --- following a container ------------------------------------------------------------

    def _observe(self, pod: dict[str, Any], running: PodProcess) -> None:
        assert running.popen is not None
        code = running.popen.poll()
        (container,) = pod["spec"]["containers"]
        if code is None:
            if not running.ready and running.probe and self._probe(running):
                running.ready = True
                self._patch_status(pod, self._running_status(container, running))
            return
        message = running.termination_message(code)
        if running.restart_always:
            running.restarts += 1
            running.spawn()
            self._patch_status(pod, self._running_status(container, running, last=(code, message)))
            return
        running.finished = True
        self._patch_status(pod, self._terminated_status(container, running, code, message))

    def _probe(self, running: PodProcess) -> bool:
        assert running.probe is not None
        path, port = running.probe
        try:
            with urllib.request.urlopen(f"http://{running.ip}:{port}{path}", timeout=2) as answer:
                return 200 <= answer.status < 400
        except (urllib.error.URLError, OSError):
            return False

    # --- status ---------------------------------------------------------------------------

    def _patch_status(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        meta = pod["metadata"]
        try:
            self.api.patch(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
                {"status": status},
            )
        except ApiError as exc:
            if exc.status != 404:
                raise

    @staticmethod
    def _conditions(ready: bool, reason: str = "") -> list[dict[str, Any]]:
        stamp = now()
        out = []
        for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready"):
            ok = ready or kind in ("PodScheduled", "Initialized")
            cond: dict[str, Any] = {
                "type": kind,
                "status": "True" if ok else "False",
                "lastProbeTime": None,
                "lastTransitionTime": stamp,
            }
            if not ok and reason:
                cond["reason"] = reason
            out.append(cond)
        return out

    def _waiting_status(self, container: dict[str, Any], why: NotStartable) -> dict[str, Any]:
        return {
            "phase": "Pending",
            "hostIP": HOST_IP,
            "conditions": self._conditions(False, "ContainersNotReady"),
            "containerStatuses": [
                {
                    "name": container["name"],
                    "image": container["image"],
                    "imageID": "",
                    "ready": False,
                    "started": False,
                    "restartCount": 0,
                    "state": {"waiting": {"reason": why.reason, "message": why.message}},
                }
            ],
        }

    def _base(self, running: PodProcess) -> dict[str, Any]:
        return {
            "hostIP": HOST_IP,
            "hostIPs": [{"ip": HOST_IP}],
            "podIP": running.ip,
            "podIPs": [{"ip": running.ip}],
            "startTime": running.started_at,
        }

    def _running_status(
        self,
        container: dict[str, Any],
        running: PodProcess,
        last: tuple[int, str] | None = None,
    ) -> dict[str, Any]:
        assert running.popen is not None
        status = {
            "name": container["name"],
            "image": container["image"],
            "imageID": "",
            "containerID": f"process://{running.popen.pid}",
            "ready": running.ready,
            "started": True,
            "restartCount": running.restarts,
            "state": {"running": {"startedAt": running.started_at}},
        }
        if last is not None:
            status["lastState"] = {
                "terminated": {"exitCode": last[0], "reason": "Error", "message": last[1]}
            }
        return {
            **self._base(running),
            "phase": "Running",
            "conditions": self._conditions(running.ready, "ContainersNotReady"),
            "containerStatuses": [status],
        }

    def _terminated_status(
        self, container: dict[str, Any], running: PodProcess, code: int, message: str
    ) -> dict[str, Any]:
        assert running.popen is not None
        terminated = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": running.started_at,
            "finishedAt": now(),
            "containerID": f"process://{running.popen.pid}",
        }
        if message:
            terminated["message"] = message
        return {
            **self._base(running),
            "phase": "Succeeded" if code == 0 else "Failed",
            "conditions": self._conditions(False, "PodCompleted" if code == 0 else "PodFailed"),
            "containerStatuses": [
                {
                    "name": container["name"],
                    "image": container["image"],
                    "imageID": "",
                    "containerID": f"process://{running.popen.pid}",
                    "ready": False,
                    "started": False,
                    "restartCount": running.restarts,
                    "state": {"terminated": terminated},
                }
            ],
        }
