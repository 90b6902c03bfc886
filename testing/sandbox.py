"""The Kubernetes cluster the cluster tests run against, and per-test namespaces in it.

The cluster is the one DEPLOYER_TEST_KUBECONFIG points at, if set (e.g. a kind cluster), else the
loopback control plane of tools/sandbox, started on first use. Independent of pytest.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SANDBOX = ROOT / "tools" / "sandbox"
KUBECONFIG_ENV = "DEPLOYER_TEST_KUBECONFIG"
KUBECTL_TIMEOUT = 120.0
NAMESPACE_NAME_MAX = 63  # a DNS-1123 label


class SandboxError(RuntimeError):
    """The cluster for the tests cannot be provided; the message says why and what to do."""


def cluster_kubeconfig() -> Path:
    """The kubeconfig of a running cluster: $DEPLOYER_TEST_KUBECONFIG, or tools/sandbox's."""
    configured = os.environ.get(KUBECONFIG_ENV)
    if not configured:
        return sandbox_up()
    path = Path(configured).expanduser()
    if not path.is_file():
        raise SandboxError(f"{KUBECONFIG_ENV}={configured} does not name a file")
    return path.resolve()


def sandbox_up(directory: Path | None = None) -> Path:
    """Start tools/sandbox (a no-op when it runs already) and return its kubeconfig."""
    argv = [str(SANDBOX), "up"]
    if directory is not None:
        argv += ["--dir", str(directory)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # tools/sandbox's message already says what is missing and how to use another cluster.
        raise SandboxError(
            f"`tools/sandbox up` failed (exit status {result.returncode}):\n{tail(result.stderr)}"
        )
    return parse_kubeconfig_line(result.stdout)


def parse_kubeconfig_line(stdout: str) -> Path:
    """The path from the `KUBECONFIG=<path>` line that tools/sandbox up prints last."""
    lines = stdout.strip().splitlines()
    last = lines[-1] if lines else ""
    key, _, value = last.partition("=")
    if key != "KUBECONFIG" or not value:
        raise SandboxError(f"`tools/sandbox up` did not end its output with KUBECONFIG=<path>: {stdout!r}")
    return Path(value)


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def kubectl_binary() -> str:
    found = shutil.which("kubectl") or ("/usr/bin/kubectl" if Path("/usr/bin/kubectl").exists() else None)
    if found is None:
        raise SandboxError("kubectl is not installed (e.g. 'apt-get install kubectl')")
    return found


def kubectl(kubeconfig: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [kubectl_binary(), f"--kubeconfig={kubeconfig}", *args]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=KUBECTL_TIMEOUT)
    if check and result.returncode != 0:
        raise SandboxError(f"{' '.join(argv)} failed (exit status {result.returncode}):\n{result.stderr}")
    return result


def unique_namespace_name(hint: str) -> str:
    """A fresh, valid namespace name that still tells which test made it."""
    suffix = uuid.uuid4().hex[:8]
    readable = re.sub(r"[^a-z0-9-]+", "-", hint.lower()).strip("-")
    readable = readable[: NAMESPACE_NAME_MAX - len(suffix) - 1].rstrip("-") or "test"
    return f"{readable}-{suffix}"


def create_namespace(kubeconfig: Path, hint: str = "test") -> str:
    """Create a uniquely named namespace and wait until pods can be created in it.

    The ServiceAccount admission plugin rejects pods until the controller manager has created the
    namespace's `default` service account, so a bare Pod or a hook would otherwise fail at random."""
    name = unique_namespace_name(hint)
    kubectl(kubeconfig, "create", "namespace", name)
    kubectl(kubeconfig, "wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=60s")
    return name


def delete_namespace(kubeconfig: Path, name: str, *, wait: bool = False) -> None:
    kubectl(kubeconfig, "delete", "namespace", name, "--ignore-not-found", f"--wait={str(wait).lower()}")
