"""A failed rollout says why, in the CI log it fails in: the objects that were not ready with their
reasons, the Warning events about them and the last lines of failed containers' logs; while it
waits, the progress line says what for. The failures are real: the sandbox's kwok stages
(testing/kwok/stages) make the pods of tests/data/charts/rollout/faulty fail as a kubelet reports
it, kwok serves their logs, and the API server, the controllers and helm do the rest."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from testing import sandbox
from testing.cluster_run import Deployer

CHARTS = Path(__file__).resolve().parent.parent / "data" / "charts" / "rollout"
CANARY = "hunter2-canary-5f3a9c"  # the crasher's log prints it (testing/kwok/logs/crash-loop.log)
FAST = {"DEPLOYER_PROGRESS_SECONDS": "2"}

Project = Callable[..., Deployer]
pytestmark = pytest.mark.usefixtures("failing_nodes")


@pytest.fixture(scope="session")
def failing_nodes(kubeconfig: Path) -> None:
    """The sandbox's kwok runs this repository's stages and serves logs: its nodes publish the
    kubelet port (--node-port), which a sandbox started before them does not."""
    port = sandbox.kubectl(
        kubeconfig,
        "get",
        "nodes",
        "-l",
        "type=kwok",
        "-o",
        "jsonpath={.items[*].status.daemonEndpoints.kubeletEndpoint.Port}",
        check=False,
    ).stdout.split()
    if not port or port[0] in ("", "0"):
        pytest.fail(
            f"the cluster of {kubeconfig} has no kwok nodes running testing/kwok/stages (a sandbox "
            "started before them?): restart it with `tools/sandbox down && tools/sandbox up`",
            pytrace=False,
        )


@pytest.fixture
def project(tmp_path: Path, namespace: str, helm: Path, kubeconfig: Path, cache: Path) -> Project:
    def make(*values: str, atomic: bool = False, extra: str = "", timeout: int = 20) -> Deployer:
        root = tmp_path / "gitops"
        shutil.copytree(CHARTS, root / "charts", dirs_exist_ok=True)
        releases = "".join(
            f"  - name: {name}\n    chart: ./charts/faulty\n    values:\n      - {v}\n{extra}"
            for name, v in zip(("app", "other"), values, strict=False)
        )
        (root / "deployer.yaml").write_text(
            textwrap.dedent(
                f"""\
                defaults:
                  namespace: {namespace}
                  timeout: {timeout}
                  wait: true
                  atomic: {str(atomic).lower()}
                environments:
                  {env(namespace)}: {{}}
                releases:
                """
            )
            + releases
        )
        return Deployer(root, helm, kubeconfig, cache)

    return make


def env(namespace: str) -> str:
    return f"why-{namespace[-8:]}"


def failed_apply(deployer: Deployer, namespace: str, *argv: str) -> tuple[str, str]:
    result = deployer("apply", "-e", env(namespace), *argv, env=FAST)
    assert result.code == 1, result.out + result.err
    return result.out, result.err


def test_an_image_that_cannot_be_pulled_is_named_even_after_helm_rolled_the_install_back(
    project: Project, namespace: str
) -> None:
    """atomic: helm uninstalls the failed install before it returns; what it waited for is still
    said, as the watch saw it."""
    deployer = project("{fail: image-pull}", atomic=True)
    out, err = failed_apply(deployer, namespace)
    pod = re.search(r"pod (app-[a-z0-9]+-[a-z0-9]+): container app: ImagePullBackOff", out)
    assert pod, out
    image = "registry.example.com/acme/api:1.2.4"
    assert f'ImagePullBackOff (Back-off pulling image "{image}": ErrImagePull: {image}: not found)' in out
    assert "apps/Deployment app: 0/1 ready" in out
    assert f"Pod {pod[1]}: Failed: Error: ErrImagePull" in out  # the kubelet's (kwok's) event
    assert "warning events (newest first):" in out
    # While it waited, the CI log said what for (once per change, not every 2 s).
    waiting = [x for x in err.splitlines() if "still running" in x and "waiting for" in x]
    assert waiting, err
    assert any("ImagePullBackOff" in x for x in waiting), waiting
    assert len(waiting) == len(set(x.split(": waiting for ")[1] for x in waiting)), waiting
    assert deployer.history("app", namespace) == []  # helm did uninstall it


def test_a_crash_looping_container_shows_its_last_log_lines_with_secrets_masked(
    project: Project, namespace: str
) -> None:
    deployer = project(
        f"{{fail: crash-loop, container: crasher, password: {CANARY}}}", extra="    sensitive: [password]\n"
    )
    out, err = failed_apply(deployer, namespace)
    crash = r"pod app-\S+: container crasher: CrashLoopBackOff \(back-off 1m20s restarting"
    assert re.search(crash, out), out
    assert "exit code 1, 4 restart(s))" in out
    assert "BackOff: Back-off restarting failed container" in out
    assert re.search(r"log of pod app-\S+ container crasher \(previous run\), last 20 line\(s\):", out), out
    assert "  | panic: cannot connect to the database: giving up" in out
    assert "  | using DSN postgres://api:<sensitive>@db:5432/api" in out
    assert "loading plugin 7 of 24" not in out  # only the last 20 lines
    assert CANARY not in out + err
    as_json = deployer("apply", "-e", env(namespace), "--output", "json", env=FAST)
    assert as_json.code == 1
    [step] = json.loads(as_json.out)["releases"]
    # (this second run replaces the failed install: the first run's pod is seen too, going)
    logs = step["diagnosis"]["logs"]
    assert {(x["container"], x["previous"], len(x["lines"])) for x in logs} == {("crasher", True, 20)}
    assert CANARY not in as_json.out + as_json.err


def test_a_pod_that_never_becomes_ready_says_so_with_its_probe_event(
    project: Project, namespace: str
) -> None:
    deployer = project("{fail: never-ready}")
    out, _ = failed_apply(deployer, namespace, "--output", "markdown")
    assert "### ❌ deployer apply:" in out
    assert f"<summary>Why <code>{namespace}/app</code> failed</summary>" in out
    assert re.search(r"pod app-\S+: container app: running, not ready", out), out
    assert "Unhealthy: Readiness probe failed: HTTP probe failed with statuscode: 503" in out


def test_a_failed_hook_job_shows_its_reason_and_its_pods_log_after_helm_deleted_it(
    project: Project, namespace: str, kubeconfig: Path
) -> None:
    """`hook-failed`: helm deletes the failed hook Job (and with it its pod and log) before it
    returns; both were read while the hook ran."""
    policy = "before-hook-creation,hook-failed"
    deployer = project(f"{{job: {{enabled: true, hook: true, fail: job-fail, deletePolicy: '{policy}'}}}}")
    out, _ = failed_apply(deployer, namespace)
    gone = sandbox.kubectl(kubeconfig, "get", "job", "app-migrate", "-n", namespace, check=False)
    assert "NotFound" in gone.stderr
    assert "batch/Job app-migrate: BackoffLimitExceeded" in out, out
    assert re.search(r"pod app-migrate-\S+: container failing-migration: Error \(exit code 1\)", out), out
    assert re.search(r"log of pod app-migrate-\S+ container failing-migration, last 3 line\(s\):", out), out
    assert '  | ERROR: relation "orders" does not exist (SQLSTATE 42P01)' in out


def test_a_claim_without_a_storage_class_is_named_with_the_provisioners_event(
    project: Project, namespace: str
) -> None:
    deployer = project("{pvc: {enabled: true}}")
    out, _ = failed_apply(deployer, namespace)
    assert "PersistentVolumeClaim app-data: Pending (storageClassName no-such-class)" in out
    assert 'ProvisioningFailed: storageclass.storage.k8s.io "no-such-class" not found' in out
    assert re.search(r"pod app-\S+: Unschedulable \(0/\d+ nodes are available", out), out


def test_a_load_balancer_without_an_address_is_named_where_helm_waits_for_it(
    project: Project, namespace: str
) -> None:
    """helm 3 waits for a LoadBalancer Service's address (none comes on a cluster without a
    load-balancer controller, as with traefik's default Service); helm 4's watcher does not."""
    deployer = project("{loadBalancer: true}")
    result = deployer("apply", "-e", env(namespace), env=FAST)
    if "v3." in deployer.helm_cmd("version", "--short"):
        assert result.code == 1, result.out + result.err
        assert "Service app: no load-balancer address yet" in result.out
        assert "waiting for Service app: no load-balancer address yet" in result.err
    else:
        assert result.code == 0, result.out + result.err
        assert "no load-balancer address" not in result.out + result.err


def test_the_watch_costs_one_request_per_kind_and_namespace_and_none_when_nothing_changes(
    project: Project, namespace: str
) -> None:
    deployer = project("{replicas: 2}", "{job: {enabled: true}}")
    debug = {**FAST, "DEPLOYER_DEBUG": "1"}
    applied = deployer("apply", "-e", env(namespace), env=debug)
    assert applied.code == 0, applied.err
    watches = sorted(
        re.sub(r"\?.*", "", x.split("kubernetes GET ")[1])
        for x in applied.err.splitlines()
        if "kubernetes GET " in x and "watch=true" in x
    )
    base = f"/namespaces/{namespace}"
    assert [w.split("://", 1)[1].split("/", 1)[1] for w in watches] == [
        f"api/v1{base}/pods",
        f"apis/apps/v1{base}/deployments",
        f"apis/batch/v1{base}/jobs",
    ], watches  # two releases, one watch per kind and namespace
    assert applied.out.splitlines()[-1].startswith("Apply complete: 2 succeeded.")
    again = deployer("apply", "-e", env(namespace), env=debug)
    assert again.code == 0, again.err
    assert "watch=true" not in again.err
