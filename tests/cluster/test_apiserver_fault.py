"""The API server stops in the middle of an apply and comes back: a clear error, the remaining work
shown by diff, and a re-run that converges. Needs the tools/sandbox cluster (it stops its apiserver)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from testing.cluster_run import Deployer
from testing.example import copy_example

SANDBOX = Path(__file__).resolve().parents[2] / "tools" / "sandbox"


def sandbox(kubeconfig: Path, command: str) -> None:
    subprocess.run([str(SANDBOX), command, "--dir", str(kubeconfig.parent)], check=True, capture_output=True)


def test_api_server_down_mid_apply_then_back(
    tmp_path: Path, namespace: str, kubeconfig: Path, cache: Path
) -> None:
    if not (kubeconfig.parent / "state.json").exists():
        pytest.skip("stopping the API server needs the tools/sandbox cluster, not DEPLOYER_TEST_KUBECONFIG's")
    from testing.tools import helm_binary

    e = f"dev-{namespace[-8:]}"
    project = copy_example(tmp_path / "gitops", namespace=namespace, env_suffix=f"-{namespace[-8:]}")
    deployer = Deployer(project, helm_binary(3), kubeconfig, cache)
    assert deployer("apply", "-e", e).code == 0
    overlay = project / "environments" / e / "values.yaml"
    good = overlay.read_text() + "worker:\n  concurrency: 3\n"
    overlay.write_text(good.replace("api:\n", "api:\n  nodeSelector: {disk: none}\n"))
    (project / "deployer.yaml").write_text(
        (project / "deployer.yaml").read_text().replace("timeout: 120", "timeout: 20")
    )

    proc = deployer.subprocess("apply", "-e", e, "--no-rollback-on-failure")
    deadline = time.monotonic() + 60
    while deployer.history("api", namespace)[-1]["status"] != "pending-upgrade":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    sandbox(kubeconfig, "stop-apiserver")
    try:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 1, err
        assert f"{namespace}/api\tupgrade\tfailed" in out
        assert f"{namespace}/worker\tupgrade\tskipped\tnot started: {namespace}/api failed" in out
        down = deployer("diff", "-e", e)
        assert down.code == 1
        assert "error: cannot reach the Kubernetes API at https://127.0.0.1:" in down.err
        assert "hint: check that the cluster is up and the kubeconfig/context are right" in down.err
    finally:
        sandbox(kubeconfig, "start-apiserver")

    remaining = deployer("diff", "-e", e)
    assert f"! {namespace}/api  blocked" in remaining.out
    assert f"~ {namespace}/worker  upgrade" in remaining.out
    overlay.write_text(good)
    result = deployer("apply", "-e", e, "--recover", "--lock-timeout", "90")
    assert result.code == 0, result.err
    assert deployer("diff", "-e", e, "--detailed-exitcode").code == 0
