"""The API server stops in the middle of an apply and comes back: a clear error, the remaining work
shown by diff, and a re-run that converges. Needs the tools/sandbox cluster (it stops its apiserver)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from testing.cluster_run import Deployer
from testing.example import copy_example

SANDBOX = Path(__file__).resolve().parents[2] / "tools" / "sandbox"
SHAPES = Path(__file__).resolve().parents[1] / "data" / "charts" / "shapes"


def sandbox(kubeconfig: Path, command: str) -> None:
    subprocess.run([str(SANDBOX), command, "--dir", str(kubeconfig.parent)], check=True, capture_output=True)


def start_apiserver(kubeconfig: Path) -> None:
    """Start the API server again, then wait until every node has renewed its lease since and is Ready.
    While the API server was down no node's heartbeat landed: the node controller may mark a node
    NotReady, and the pods on it not ready, until the node reports again (seen on a loaded machine: a
    pod of the next apply stayed not ready past its release's timeout)."""
    sandbox(kubeconfig, "start-apiserver")
    back = datetime.now(UTC)
    deadline = time.monotonic() + 180
    while not _nodes_settled(kubeconfig, back):
        assert time.monotonic() < deadline, "the nodes did not report Ready after the API server came back"
        time.sleep(1)


def _nodes_settled(kubeconfig: Path, since: datetime) -> bool:
    def items(*args: str) -> list[dict[str, Any]]:
        got = subprocess.run(
            ["kubectl", "--kubeconfig", str(kubeconfig), "get", *args, "-o", "json"],
            capture_output=True,
            text=True,
            check=False,
        )
        return list(json.loads(got.stdout).get("items") or []) if got.returncode == 0 else []

    leases = items("leases", "-n", "kube-node-lease")
    nodes = items("nodes")
    renewed = all(
        datetime.fromisoformat(str(lease["spec"]["renewTime"]).replace("Z", "+00:00")) > since
        for lease in leases
    )
    ready = all(
        any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions") or [])
        for node in nodes
    )
    return bool(leases) and bool(nodes) and renewed and ready


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
        start_apiserver(kubeconfig)

    remaining = deployer("diff", "-e", e)
    assert f"! {namespace}/api  blocked" in remaining.out
    assert f"~ {namespace}/worker  upgrade" in remaining.out
    overlay.write_text(good)
    result = deployer("apply", "-e", e, "--recover", "--lock-timeout", "90")
    assert result.code == 0, result.err
    assert deployer("diff", "-e", e, "--detailed-exitcode").code == 0


GATED_HELM = """#!/bin/sh
# The real helm, except that an upgrade of release 'a' first waits until the file {gate} exists, so
# the run is busy (holding its lock) for as long as the test wants.
case " $* " in
  *" upgrade --install a "*)
    touch "{waiting}"
    while [ ! -e "{gate}" ]; do sleep 0.2; done ;;
esac
exec "{real}" "$@"
"""


def test_a_run_that_loses_its_lock_starts_no_further_release_and_the_next_run_converges(
    tmp_path: Path, namespace: str, kubeconfig: Path, cache: Path
) -> None:
    if not (kubeconfig.parent / "state.json").exists():
        pytest.skip("stopping the API server needs the tools/sandbox cluster, not DEPLOYER_TEST_KUBECONFIG's")
    from testing.tools import helm_binary

    gate, waiting = tmp_path / "gate", tmp_path / "waiting"
    wrapper = tmp_path / "bin" / "helm"
    wrapper.parent.mkdir()
    wrapper.write_text(GATED_HELM.format(gate=gate, waiting=waiting, real=helm_binary(3)))
    wrapper.chmod(0o755)
    project = tmp_path / "gitops"
    shutil.copytree(SHAPES / "api", project / "charts" / "api")
    e = f"dev-{namespace[-8:]}"
    spec = project / "deployer.yaml"
    spec.write_text(
        f"defaults: {{namespace: {namespace}, timeout: 60}}\nenvironments:\n  {e}: {{}}\nreleases:\n"
        "  - {name: a, chart: ./charts/api, values: [{service: {port: 81}}]}\n"
        "  - {name: b, chart: ./charts/api, values: [{service: {port: 81}}]}\n"
    )
    deployer = Deployer(project, wrapper, kubeconfig, cache)
    gate.touch()
    assert deployer("apply", "-e", e).code == 0
    gate.unlink()
    waiting.unlink()  # the first apply upgraded a too
    spec.write_text(spec.read_text().replace("port: 81", "port: 82"))

    proc = deployer.subprocess("apply", "-e", e, "--concurrency", "1", "--no-rollback-on-failure")
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.extend(proc.stderr or ()), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while not waiting.exists():  # release a has started: the run holds its lock and is busy
        assert time.monotonic() < deadline, errors
        time.sleep(0.2)
    sandbox(kubeconfig, "stop-apiserver")
    try:
        while not any("lost the lock" in line for line in errors):
            assert time.monotonic() < deadline + 60, errors
            time.sleep(0.5)
    finally:
        start_apiserver(kubeconfig)
    gate.touch()  # a's upgrade goes on, now that the API server is back
    out = proc.stdout.read() if proc.stdout else ""
    assert proc.wait(timeout=180) == 1, (out, errors)
    reader.join(timeout=10)
    lost = f"lost the lock on environment '{e}' of project 'gitops'"
    assert f"{namespace}/b\tupgrade\tskipped\tnot started: {lost}" in out, out
    assert any(line.startswith(f"error: {lost}") for line in errors), errors
    assert deployer.revision("b", namespace) == 1  # b was never started

    again = deployer("apply", "-e", e, "--lock-timeout", "90")
    assert again.code == 0, again.out + again.err
    assert deployer.revision("b", namespace) == 2
    assert deployer("diff", "-e", e, "--detailed-exitcode").code == 0
