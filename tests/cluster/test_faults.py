"""Faults: deployer killed mid-apply, helm killed mid-upgrade. After each, diff shows exactly the
work that remains, and a re-run (with --recover for the stuck release) converges."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from testing.cluster_run import Deployer
from testing.example import copy_example

KILLING_HELM = """#!/bin/sh
# Runs the real helm, except that an upgrade of release 'api' is killed with SIGKILL after 3 s.
case " $* " in
  *" upgrade --install api "*)
    "{real}" "$@" &
    pid=$!
    sleep 3
    kill -9 "$pid"
    exit 137 ;;
esac
exec "{real}" "$@"
"""


@pytest.fixture
def deployer(tmp_path: Path, namespace: str, helm: Path, kubeconfig: Path, cache: Path) -> Deployer:
    project = copy_example(tmp_path / "gitops", namespace=namespace, env_suffix=f"-{namespace[-8:]}")
    return Deployer(project, helm, kubeconfig, cache)


def unschedulable_api(deployer: Deployer, env: str) -> tuple[Path, str]:
    overlay = deployer.project / "environments" / env / "values.yaml"
    good = overlay.read_text()
    overlay.write_text(
        good.replace("api:\n", "api:\n  nodeSelector: {disk: none}\n") + "worker:\n  concurrency: 3\n"
    )
    return overlay, good + "worker:\n  concurrency: 3\n"


def wait_for_status(
    deployer: Deployer, release: str, namespace: str, status: str, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while not (h := deployer.history(release, namespace)) or h[-1]["status"] != status:
        assert time.monotonic() < deadline, f"{release} never reached {status}: {h}"
        time.sleep(0.2)


def test_deployer_killed_mid_apply_then_recover_converges(deployer: Deployer, namespace: str) -> None:
    e = f"dev-{namespace[-8:]}"
    assert deployer("apply", "-e", e).code == 0
    overlay, fixed = unschedulable_api(deployer, e)
    proc = deployer.subprocess("apply", "-e", e, "--no-rollback-on-failure")
    wait_for_status(deployer, "api", namespace, "pending-upgrade")
    os.killpg(proc.pid, signal.SIGKILL)  # the CI job is killed: deployer and its helm die together
    proc.wait()

    stuck = deployer("diff", "-e", e)
    assert f"! {namespace}/api  blocked" in stuck.out
    assert f"~ {namespace}/worker  upgrade" in stuck.out  # the work that remains, nothing lost

    overlay.write_text(fixed)
    # The dead run's lock expires on its own (30 s lease); --recover unsticks api, then applies.
    result = deployer("apply", "-e", e, "--recover", "--lock-timeout", "90")
    assert result.code == 0, result.err
    assert "api: recovered by rolling back to revision 1" in result.err
    clean = deployer("diff", "-e", e, "--detailed-exitcode")
    assert clean.code == 0, clean.out


def test_helm_killed_mid_upgrade_is_reported_and_recovered(
    deployer: Deployer, namespace: str, tmp_path: Path
) -> None:
    e = f"dev-{namespace[-8:]}"
    assert deployer("apply", "-e", e).code == 0
    overlay, fixed = unschedulable_api(deployer, e)
    wrapper = tmp_path / "killing-helm" / "helm"
    wrapper.parent.mkdir()
    wrapper.write_text(KILLING_HELM.format(real=deployer.helm))
    wrapper.chmod(0o755)

    result = deployer("apply", "-e", e, "--no-rollback-on-failure", env={"DEPLOYER_HELM": str(wrapper)})
    assert result.code == 1
    lines = result.out.splitlines()
    assert f"{namespace}/api\tupgrade\tfailed" in "\n".join(lines)
    assert any(
        line.startswith(f"{namespace}/worker\tupgrade\tskipped\tnot started: {namespace}/api failed")
        for line in lines
    )
    assert lines[-1].startswith("Apply FAILED: ")

    stuck = deployer("diff", "-e", e)
    assert f"! {namespace}/api  blocked" in stuck.out
    overlay.write_text(fixed)
    assert deployer("apply", "-e", e, "--recover").code == 0
    assert deployer("diff", "-e", e, "--detailed-exitcode").code == 0
