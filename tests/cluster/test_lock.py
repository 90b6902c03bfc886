"""The run lock against a real API server: clocks an hour apart do not let a second run in, and two
projects that both have a `dev` environment never wait for each other."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployer.lock import lease_name
from testing import sandbox
from testing.cluster_run import Deployer
from testing.example import copy_example

# The deployer of this checkout, whatever one the interpreter has installed.
THIS_CHECKOUT = {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def project(tmp_path: Path, directory: str, namespace: str, suffix: str) -> Path:
    """The example as project `directory`, releases in `namespace`, its Lease in `namespace` too."""
    root = copy_example(tmp_path / directory, namespace=namespace, env_suffix=suffix)
    spec = root / "deployer.yaml"
    spec.write_text(spec.read_text() + f"\nlock:\n  namespace: {namespace}\n")
    return root


def hang_api_upgrade(root: Path, env: str, timeout: int) -> None:
    """The next apply upgrades api to a pod no node accepts: helm waits `timeout` seconds, holding
    the lock all that time (kwok nodes have no label disk=none)."""
    overlay = root / "environments" / env / "values.yaml"
    overlay.write_text(overlay.read_text().replace("api:\n", "api:\n  nodeSelector: {disk: none}\n"))
    spec = root / "deployer.yaml"
    spec.write_text(spec.read_text().replace("timeout: 120", f"timeout: {timeout}"))


def wait_for_status(deployer: Deployer, release: str, namespace: str, status: str) -> None:
    deadline = time.monotonic() + 90
    while not (h := deployer.history(release, namespace)) or h[-1]["status"] != status:
        assert time.monotonic() < deadline, f"{release} never reached {status}: {h}"
        time.sleep(0.2)


def lease(kubeconfig: Path, namespace: str, name: str) -> dict[str, object]:
    out = sandbox.kubectl(kubeconfig, "get", "lease", name, "-n", namespace, "-o", "json").stdout
    spec: dict[str, object] = json.loads(out)["spec"]
    return spec


def utc(micro_time: object) -> dt.datetime:
    return dt.datetime.strptime(str(micro_time), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)


@pytest.fixture
def other_namespace(kubeconfig: Path) -> Iterator[str]:
    name = sandbox.create_namespace(kubeconfig, hint="other-project")
    yield name
    sandbox.delete_namespace(kubeconfig, name)


def test_a_run_whose_clock_is_an_hour_ahead_never_takes_a_held_lock(
    tmp_path: Path, namespace: str, helm: Path, kubeconfig: Path, cache: Path
) -> None:
    suffix = f"-{namespace[-8:]}"
    e = f"dev{suffix}"
    deployer = Deployer(project(tmp_path, "shop", namespace, suffix), helm, kubeconfig, cache)
    assert deployer("apply", "-e", e).code == 0
    hang_api_upgrade(deployer.project, e, timeout=90)
    name = lease_name("shop", e)

    # The holder's clock is an hour behind: every renewTime it writes is an hour in the past, which
    # a lock that compared clocks would take for a lease that expired long ago.
    first = deployer.subprocess(
        "apply",
        "-e",
        e,
        "--no-rollback-on-failure",
        env={**THIS_CHECKOUT, "DEPLOYER_TEST_CLOCK_OFFSET": "-3600"},
    )
    try:
        wait_for_status(deployer, "api", namespace, "pending-upgrade")
        held = lease(kubeconfig, namespace, name)
        assert f"pid {first.pid}" in str(held["holderIdentity"])
        assert utc(held["renewTime"]) < dt.datetime.now(dt.UTC) - dt.timedelta(minutes=50)

        # The second run's clock is an hour ahead; it waits longer than the 30 s lease duration.
        started = time.monotonic()
        second = deployer(
            "apply", "-e", e, "--lock-timeout", "45", env={"DEPLOYER_TEST_CLOCK_OFFSET": "3600"}
        )
        assert time.monotonic() - started >= 45
        assert second.code == 1, second.err
        assert f"error: environment '{e}' of project 'shop' is locked by " in second.err
        assert f"pid {first.pid}" in second.err
        assert f"(Lease {namespace}/{name})" in second.err
        assert f"pid {first.pid}" in str(lease(kubeconfig, namespace, name)["holderIdentity"])

        out, err = first.communicate(timeout=240)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    assert first.returncode == 1, err  # api never became ready: its own failure, not the lock's
    assert f"{namespace}/api\tupgrade\tfailed" in out
    assert "lost the lock" not in err and "could not renew" not in err
    gone = sandbox.kubectl(kubeconfig, "get", "lease", name, "-n", namespace, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr  # released at the end of the run


@pytest.fixture
def shop(tmp_path: Path, namespace: str, helm: Path, kubeconfig: Path, cache: Path) -> Deployer:
    return Deployer(project(tmp_path, "shop", namespace, f"-{namespace[-8:]}"), helm, kubeconfig, cache)


@pytest.fixture
def books(tmp_path: Path, namespace: str, other_namespace: str, shop: Deployer) -> Deployer:
    """Another project with the same environment names as shop, releases in another namespace."""
    root = project(tmp_path, "books", other_namespace, f"-{namespace[-8:]}")
    return Deployer(root, shop.helm, shop.kubeconfig, shop.cache)


def test_two_projects_with_the_same_environment_name_do_not_wait_for_each_other(
    shop: Deployer, books: Deployer, namespace: str, other_namespace: str, kubeconfig: Path
) -> None:
    e = f"dev-{namespace[-8:]}"
    assert shop("apply", "-e", e).code == 0
    hang_api_upgrade(shop.project, e, timeout=40)

    busy = shop.subprocess("apply", "-e", e, "--no-rollback-on-failure", env=THIS_CHECKOUT)
    try:
        wait_for_status(shop, "api", namespace, "pending-upgrade")
        assert lease(kubeconfig, namespace, lease_name("shop", e))  # shop's run holds its lock
        result = books("apply", "-e", e, "--lock-timeout", "1")
        assert result.code == 0, result.err
        assert "waiting for the lock" not in result.err
        assert all(books.revision(r, other_namespace) == 1 for r in ("platform-config", "api", "worker"))
        busy.communicate(timeout=180)
    finally:
        if busy.poll() is None:
            os.killpg(busy.pid, signal.SIGKILL)
            busy.wait()
