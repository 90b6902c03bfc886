"""Pull mode with the real Flux: the example's export, applied to the sandbox, is installed by
helm-controller in `needs` order, and deployer's diff then finds nothing to do; releases deployer
installed are adopted, not copied; a failed install is remediated as `atomic` says; deployer refuses
to push to (or roll back) what Flux manages unless told to take it over.

One source-controller and one helm-controller (tools/build) run for the whole module, watching only
the module's Flux namespace; the Git server they clone from is testing/gitserve.py. Every test
exports HelmReleases of the same names into that namespace, so each one deletes its Flux objects
when it ends (the `flux_objects` fixture)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployer.observed import decode_release
from testing import flux_controllers, sandbox, tools
from testing.cli import run
from testing.example import copy_example

READY_TIMEOUT = "180s"


@pytest.fixture(scope="module")
def flux(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[flux_controllers.Flux]:
    namespace = sandbox.create_namespace(kubeconfig, hint="flux-system")
    try:
        running = flux_controllers.start(kubeconfig, namespace, tmp_path_factory.mktemp("flux"))
    except BaseException:
        sandbox.delete_namespace(kubeconfig, namespace)
        raise
    yield running
    running.delete_objects()
    running.stop()
    sandbox.delete_namespace(kubeconfig, namespace)


@pytest.fixture
def flux_objects(flux: flux_controllers.Flux, namespace: str) -> Iterator[flux_controllers.Flux]:
    """The module's Flux, emptied of the test's objects when it ends (before `namespace` goes)."""
    yield flux
    flux.delete_objects()


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


def published_example(
    flux: flux_controllers.Flux, namespace: str, tmp_path: Path, name: str
) -> tuple[Path, str]:
    """The example project (releases in `namespace`), committed and served by the Git server."""
    project = copy_example(tmp_path / name, namespace=namespace)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=project, check=True)
    commit(project, name)
    return project, flux.git.publish(project, name)


def helm_env(kubeconfig: Path) -> dict[str, str]:
    return {"KUBECONFIG": str(kubeconfig), "DEPLOYER_HELM": str(tools.helm_binary(3))}


def test_flux_installs_the_export_in_needs_order_and_deployer_sees_no_change(
    flux_objects: flux_controllers.Flux, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    flux = flux_objects
    project, url = published_example(flux, namespace, tmp_path, "shop")
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

    environ = helm_env(kubeconfig)
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


def release_copies(kubeconfig: Path, namespace: str) -> list[tuple[str, str]]:
    """(storage namespace, release name) of every release, stored anywhere in the cluster, whose
    objects go to `namespace`: a second copy of a release would be a second entry."""
    listed = sandbox.kubectl(kubeconfig, "get", "secrets", "-A", "-l", "owner=helm", "-o", "json")
    copies = set()
    for item in json.loads(listed.stdout)["items"]:
        record = decode_release(item["data"]["release"])
        if record["namespace"] == namespace:
            copies.add((item["metadata"]["namespace"], record["name"]))
    return sorted(copies)


def revisions(kubeconfig: Path, namespace: str) -> dict[str, int]:
    return {name: r["version"] for name, r in helm_releases(kubeconfig, namespace).items()}


def test_flux_adopts_what_deployer_applied_and_rollback_refuses_unless_taking_over(
    flux_objects: flux_controllers.Flux, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    flux = flux_objects
    project, url = published_example(flux, namespace, tmp_path, "adopt")
    environ = helm_env(kubeconfig)
    pushed = run(["apply", "-e", "dev"], project, environ)
    assert pushed.code == 0, pushed.out + pushed.err
    assert revisions(kubeconfig, namespace) == {"platform-config": 1, "api": 1, "worker": 1}

    export_and_apply(project, flux, url, tmp_path / "out")
    wait_ready(flux)

    # Adopted: each release upgraded once in place by helm-controller (its labels are in the stored
    # manifest now), and no release installed a second time under another name or storage namespace.
    records = helm_releases(kubeconfig, namespace)
    assert {n: r["version"] for n, r in records.items()} == {"platform-config": 2, "api": 2, "worker": 2}
    assert all(r["info"]["status"] == "deployed" for r in records.values())
    assert all("helm.toolkit.fluxcd.io/name" in r["manifest"] for r in records.values())
    assert release_copies(kubeconfig, namespace) == [
        (namespace, "api"),
        (namespace, "platform-config"),
        (namespace, "worker"),
    ]
    diff = run(["diff", "-e", "dev", "--detailed-exitcode"], project, environ)
    assert diff.code == 0, diff.out + diff.err

    # Rolling back what Flux manages is refused, naming the HelmRelease and the way out.
    refused = run(["rollback", "-e", "dev", "api"], project, environ)
    assert refused.code == 1
    assert (
        f"rollback refused: managed by Flux: {namespace}/api (HelmRelease {flux.namespace}/api)"
        in refused.err
    )
    assert "--take-over-from-flux" in refused.err
    assert revisions(kubeconfig, namespace) == {"platform-config": 2, "api": 2, "worker": 2}

    # Taken over (Flux suspended first, as docs/flux.md says): back to deployer's revision 1.
    sandbox.kubectl(
        kubeconfig,
        "patch",
        "helmrelease",
        "api",
        "-n",
        flux.namespace,
        "--type=merge",
        "-p",
        '{"spec":{"suspend":true}}',
    )
    taken = run(["rollback", "-e", "dev", "api", "--take-over-from-flux"], project, environ)
    assert taken.code == 0, taken.out + taken.err
    assert f"{namespace}/api\trolled back to revision 1" in taken.out
    api = helm_releases(kubeconfig, namespace)["api"]
    assert (api["version"], api["info"]["status"]) == (3, "deployed")
    assert "helm.toolkit.fluxcd.io" not in api["manifest"]


def test_a_failed_install_is_uninstalled_as_atomic_says(
    flux_objects: flux_controllers.Flux, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    """atomic: true is exported as install remediation (retries 0, remediateLastFailure): a release
    whose pods can never be scheduled fails its wait, and helm-controller uninstalls it and stops."""
    flux = flux_objects
    project = copy_example(tmp_path / "broken", namespace=namespace)
    shutil.rmtree(project / "environments")
    (project / "deployer.yaml").write_text(
        f"defaults: {{namespace: {namespace}, timeout: 5, wait: true, atomic: true}}\n"
        "environments: {dev: {}}\n"
        "releases:\n"
        "  - name: unschedulable\n"
        "    chart: ./charts/web\n"
        "    values:\n"
        "      - nodeSelector: {deployer.test/no-such-node: 'true'}\n"
    )
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=project, check=True)
    commit(project, "broken")
    url = flux.git.publish(project, "broken")
    export_and_apply(project, flux, url, tmp_path / "out")
    exported = yaml.safe_load((tmp_path / "out" / "helmrelease-unschedulable.yaml").read_text())
    assert exported["spec"]["install"]["remediation"] == {"retries": 0, "remediateLastFailure": True}

    stalled = sandbox.kubectl(
        kubeconfig,
        *("wait", "--for=condition=Stalled", "helmrelease/unschedulable", "-n", flux.namespace),
        f"--timeout={READY_TIMEOUT}",
        check=False,
    )
    assert stalled.returncode == 0, stalled.stderr + sandbox.tail(flux.log("helm-controller"))
    status = json.loads(
        sandbox.kubectl(
            kubeconfig, "get", "helmrelease/unschedulable", "-n", flux.namespace, "-o", "json"
        ).stdout
    )["status"]
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions["Ready"] == ("False", "InstallFailed")
    assert conditions["Remediated"] == ("True", "UninstallSucceeded")
    assert conditions["Stalled"] == ("True", "RetriesExceeded")
    assert status["installFailures"] == 1
    # Uninstalled: no release record and none of its objects are left.
    assert helm_releases(kubeconfig, namespace) == {}
    left = sandbox.kubectl(kubeconfig, "get", "deployment,service,configmap", "-n", namespace, "-o", "name")
    assert "unschedulable" not in left.stdout
