"""The sandbox is a real cluster: helm's install/upgrade/rollback/uninstall behave as on any other,
on both helm majors, and the controllers behind --wait, hooks and namespace deletion all run."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from testing import sandbox

CHART = Path(__file__).resolve().parent.parent / "data" / "charts" / "smoke"
RELEASE = "smoke"
TIMEOUT = "120s"


@dataclass(frozen=True)
class Helm:
    """One helm binary, isolated from the user's helm configuration, aimed at one namespace."""

    binary: Path
    major: int
    env: dict[str, str]
    kubeconfig: Path
    namespace: str

    def __call__(self, *args: str) -> str:
        argv = [str(self.binary), *args, f"--kubeconfig={self.kubeconfig}", f"--namespace={self.namespace}"]
        result = subprocess.run(argv, env=self.env, capture_output=True, text=True, check=False, timeout=300)
        assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    @property
    def wait(self) -> str:
        # Helm 4 has wait strategies (watcher, hookOnly, legacy); name the one that waits for pods.
        return "--wait=watcher" if self.major >= 4 else "--wait"

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--output=json"))


@pytest.fixture
def run_helm(helm: Path, kubeconfig: Path, namespace: str, tmp_path: Path) -> Helm:
    env = os.environ | {
        "HELM_CACHE_HOME": str(tmp_path / "helm-cache"),
        "HELM_CONFIG_HOME": str(tmp_path / "helm-config"),
        "HELM_DATA_HOME": str(tmp_path / "helm-data"),
    }
    version = subprocess.run(
        [str(helm), "version", "--template={{.Version}}"], env=env, capture_output=True, text=True, check=True
    ).stdout
    major = int(version.removeprefix("v").split(".")[0])
    return Helm(helm, major, env, kubeconfig, namespace)


def kubectl_json(kubeconfig: Path, namespace: str, *args: str) -> Any:
    return json.loads(sandbox.kubectl(kubeconfig, "-n", namespace, *args, "-o", "json").stdout)


def install(helm: Helm, *values: str) -> None:
    helm("install", RELEASE, str(CHART), helm.wait, f"--timeout={TIMEOUT}", *values)


def release(helm: Helm) -> tuple[str, int]:
    status = helm.json("status", RELEASE)
    return status["info"]["status"], status["version"]


def deployment(helm: Helm) -> Any:
    return kubectl_json(helm.kubeconfig, helm.namespace, "get", "deployment", f"{RELEASE}-web")


def ready_pods(helm: Helm) -> list[str]:
    selector = f"app.kubernetes.io/name=smoke,app.kubernetes.io/instance={RELEASE}"
    pods = kubectl_json(helm.kubeconfig, helm.namespace, "get", "pods", "-l", selector)["items"]
    return [
        pod["metadata"]["name"]
        for pod in pods
        if any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))
    ]


def test_install_with_wait_makes_pods_ready_and_runs_hooks(run_helm: Helm) -> None:
    install(run_helm)

    assert release(run_helm) == ("deployed", 1)
    assert len(ready_pods(run_helm)) == 2
    assert deployment(run_helm)["status"]["readyReplicas"] == 2
    job = kubectl_json(run_helm.kubeconfig, run_helm.namespace, "get", "job", f"{RELEASE}-post-install")
    assert job["status"].get("succeeded") == 1
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"]["conditions"])


def test_upgrade_then_rollback_restores_the_previous_spec(run_helm: Helm) -> None:
    install(run_helm)

    run_helm("upgrade", RELEASE, str(CHART), run_helm.wait, f"--timeout={TIMEOUT}", "--set=replicaCount=3")
    assert release(run_helm) == ("deployed", 2)
    assert len(ready_pods(run_helm)) == 3

    run_helm("rollback", RELEASE, "1", run_helm.wait, f"--timeout={TIMEOUT}")
    assert release(run_helm) == ("deployed", 3)
    assert deployment(run_helm)["spec"]["replicas"] == 2
    assert [entry["revision"] for entry in run_helm.json("history", RELEASE)] == [1, 2, 3]


def test_uninstall_removes_the_release_objects(run_helm: Helm) -> None:
    install(run_helm)

    run_helm("uninstall", RELEASE, "--wait", f"--timeout={TIMEOUT}")

    left = sandbox.kubectl(run_helm.kubeconfig, "-n", run_helm.namespace, "get", "deploy,svc", "-o=name")
    assert left.stdout == ""
    release_secrets = sandbox.kubectl(
        run_helm.kubeconfig,
        "-n",
        run_helm.namespace,
        "get",
        "secrets",
        f"-l=owner=helm,name={RELEASE}",
        "-o=name",
    )
    assert release_secrets.stdout == ""


def test_deleting_a_namespace_with_a_release_completes(run_helm: Helm) -> None:
    install(run_helm)

    sandbox.kubectl(run_helm.kubeconfig, "delete", "namespace", run_helm.namespace, f"--timeout={TIMEOUT}")

    gone = sandbox.kubectl(run_helm.kubeconfig, "get", "namespace", run_helm.namespace, check=False)
    assert "NotFound" in gone.stderr


def test_second_up_reuses_the_running_sandbox(kubeconfig: Path) -> None:
    state_dir = kubeconfig.parent
    if not (state_dir / "state.json").exists():
        pytest.skip(f"{sandbox.KUBECONFIG_ENV} points at a cluster that tools/sandbox did not start")
    pids_before = {pid_file.name: pid_file.read_text() for pid_file in state_dir.glob("*.pid")}

    assert sandbox.sandbox_up(state_dir) == kubeconfig

    pids_after = {pid_file.name: pid_file.read_text() for pid_file in state_dir.glob("*.pid")}
    assert len(pids_before) == 5
    assert pids_after == pids_before
    for pid in pids_after.values():
        os.kill(int(pid), 0)  # still alive
