"""Pull mode with the real Flux: the example's export, applied to the sandbox, is installed by
helm-controller in `needs` order, and deployer's diff then finds nothing to do.

One source-controller and one helm-controller (tools/build) run for the whole module, watching only
the module's Flux namespace; the Git server they clone from is testing/gitserve.py."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deployer.observed import decode_release
from testing import flux_controllers, sandbox, tools
from testing.cli import run
from testing.example import copy_example

READY_TIMEOUT = "180s"


@pytest.fixture(scope="module")
def flux(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[flux_controllers.Flux]:
    namespace = sandbox.create_namespace(kubeconfig, hint="flux-system")
    running = flux_controllers.start(kubeconfig, namespace, tmp_path_factory.mktemp("flux"))
    yield running
    running.delete_objects()
    running.stop()
    sandbox.delete_namespace(kubeconfig, namespace)


def commit(project: Path, message: str) -> None:
    for args in (["add", "-A"], ["commit", "-q", "--allow-empty", "-m", message]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=project, check=True)


def export_and_apply(project: Path, flux: flux_controllers.Flux, url: str, out: Path) -> None:
    argv = ["export", "flux", "-e", "dev", "--output-dir", str(out), "--git-url", url, "--git-ref", "main"]
    result = run(
        [*argv, "--namespace", flux.namespace, "--interval", "1m"],
        project,
    )
    assert result.code == 0, result.err
    sandbox.kubectl(flux.kubeconfig, "apply", "--server-side", "-R", "-f", str(out))


def wait_ready(flux: flux_controllers.Flux) -> None:
    done = sandbox.kubectl(
        flux.kubeconfig,
        *("wait", "--for=condition=Ready", "helmrelease", "--all", "-n", flux.namespace),
        f"--timeout={READY_TIMEOUT}",
        check=False,
    )
    if done.returncode != 0:
        state = sandbox.kubectl(
            flux.kubeconfig, "get", "helmrelease,helmchart,gitrepository", "-n", flux.namespace
        )
        pytest.fail(f"{done.stderr}\n{state.stdout}\n{sandbox.tail(flux.log('helm-controller'))}")


def helm_releases(kubeconfig: Path, namespace: str) -> dict[str, dict[str, Any]]:
    """The current revision's release record of every release in `namespace`, by name."""
    listed = sandbox.kubectl(kubeconfig, "get", "secrets", "-n", namespace, "-l", "owner=helm", "-o", "json")
    out: dict[str, tuple[int, dict[str, Any]]] = {}
    for item in json.loads(listed.stdout)["items"]:
        labels = item["metadata"]["labels"]
        version = int(labels["version"])
        if labels["name"] not in out or out[labels["name"]][0] < version:
            out[labels["name"]] = (version, decode_release(item["data"]["release"]))
    return {name: record for name, (_, record) in out.items()}


def test_flux_installs_the_export_in_needs_order_and_deployer_sees_no_change(
    flux: flux_controllers.Flux, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    project = copy_example(tmp_path / "shop", namespace=namespace)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=project, check=True)
    commit(project, "shop")
    url = flux.git.publish(project, "shop")
    start = time.monotonic()
    export_and_apply(project, flux, url, tmp_path / "out")
    wait_ready(flux)
    print(f"kubectl apply of the export -> all HelmReleases Ready: {time.monotonic() - start:.1f}s")

    records = helm_releases(kubeconfig, namespace)
    assert sorted(records) == ["api", "platform-config", "worker"]
    assert all(r["version"] == 1 and r["info"]["status"] == "deployed" for r in records.values())
    first = {name: r["info"]["first_deployed"] for name, r in records.items()}
    # dependsOn: api after platform-config; worker after both (RFC 3339 times with nanoseconds, UTC).
    assert first["platform-config"] < first["api"] < first["worker"]

    environ = {"KUBECONFIG": str(kubeconfig), "DEPLOYER_HELM": str(tools.helm_binary(3))}
    diff = run(["diff", "-e", "dev", "--detailed-exitcode"], project, environ)
    assert diff.code == 0, diff.out + diff.err
    assert "helm.toolkit.fluxcd.io" not in diff.out
    assert f"managed by Flux (HelmRelease {flux.namespace}/api)" in diff.out

    status = run(["status", "-e", "dev"], project, environ)
    assert status.code == 0, status.err
    assert f"deployed (Flux: HelmRelease {flux.namespace}/worker)" in status.out

    # Pushing to what Flux manages is refused (Flux would revert it), and nothing changes.
    push = run(["apply", "-e", "dev", "-l", "name=api", "--set", "replicaCount=2"], project, environ)
    assert push.code == 1
    assert f"apply refused: managed by Flux: {namespace}/api (HelmRelease {flux.namespace}/api)" in push.err
    assert "--take-over-from-flux" in push.err
    removal = run(["destroy", "-e", "dev", "--include-unlabelled"], project, environ)
    assert removal.code == 1
    assert "destroy refused: managed by Flux" in removal.err
    assert {n: r["version"] for n, r in helm_releases(kubeconfig, namespace).items()} == {
        "platform-config": 1,
        "api": 1,
        "worker": 1,
    }

    # An overlay change, exported and applied: Flux upgrades exactly that release.
    overlay = project / "environments" / "dev" / "values.yaml"
    overlay.write_text(overlay.read_text().replace("environment: dev", "environment: dev-2"))
    commit(project, "dev-2")
    flux.git.publish(project, "shop")
    export_and_apply(project, flux, url, tmp_path / "out")
    deadline = time.monotonic() + 120
    while helm_releases(kubeconfig, namespace)["platform-config"]["version"] < 2:
        assert time.monotonic() < deadline, sandbox.tail(flux.log("helm-controller"))
        time.sleep(1)
    wait_ready(flux)
    records = helm_releases(kubeconfig, namespace)
    assert {n: r["version"] for n, r in records.items()} == {"platform-config": 2, "api": 1, "worker": 1}
    assert records["platform-config"]["config"]["environment"] == "dev-2"
    diff = run(["diff", "-e", "dev", "--detailed-exitcode"], project, environ)
    assert diff.code == 0, diff.out + diff.err
