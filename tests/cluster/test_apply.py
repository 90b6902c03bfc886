"""`deployer apply` against the sandbox: ordered, idempotent, minimal, locked, and safe on failure."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from deployer.lock import lease_name
from testing.cluster_run import Deployer
from testing.example import copy_example


@pytest.fixture
def deployer(tmp_path: Path, namespace: str, helm: Path, kubeconfig: Path, cache: Path) -> Deployer:
    project = copy_example(tmp_path / "gitops", namespace=namespace, env_suffix=f"-{namespace[-8:]}")
    return Deployer(project, helm, kubeconfig, cache)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


RELEASES = ("platform-config", "api", "worker")


def test_apply_from_empty_deploys_each_release_after_what_it_needs_then_is_idempotent(
    deployer: Deployer, namespace: str
) -> None:
    e = f"dev-{namespace[-8:]}"
    result = deployer("apply", "-e", e)
    assert result.code == 0, result.err
    assert result.out.splitlines()[-1].startswith("Apply complete: 3 succeeded. Run ")
    history = {name: deployer.history(name, namespace) for name in RELEASES}
    assert all(h[-1]["status"] == "deployed" and h[-1]["revision"] == 1 for h in history.values())
    assert history["platform-config"][0]["updated"] <= history["api"][0]["updated"]
    assert history["api"][0]["updated"] <= history["worker"][0]["updated"]
    # Labelled with the environment and the run, described with the spec's commit.
    assert history["api"][0]["description"].startswith("deployer run ")

    again = deployer("apply", "-e", e)
    assert again.code == 0, again.err
    assert again.out == f"No changes: 3 release(s) in {e} are up to date.\n"
    as_json = json.loads(deployer("apply", "-e", e, "--output", "json").out)
    assert (as_json["ok"], as_json["releases"]) == (True, [])
    assert {name: deployer.revision(name, namespace) for name in RELEASES} == dict.fromkeys(RELEASES, 1)


def test_a_values_change_gives_only_that_release_a_new_revision(deployer: Deployer, namespace: str) -> None:
    e = f"dev-{namespace[-8:]}"
    assert deployer("apply", "-e", e).code == 0
    overlay = deployer.project / "environments" / e / "values.yaml"
    overlay.write_text(overlay.read_text() + "worker:\n  concurrency: 7\n")
    result = deployer("apply", "-e", e)
    assert result.code == 0, result.err
    assert {name: deployer.revision(name, namespace) for name in RELEASES} == {
        "platform-config": 1,
        "api": 1,
        "worker": 2,
    }


def test_a_failed_release_skips_its_dependents_and_the_run_rolls_back(
    deployer: Deployer, namespace: str
) -> None:
    e = f"dev-{namespace[-8:]}"
    assert deployer("apply", "-e", e).code == 0
    before = {name: deployer.manifest(name, namespace) for name in RELEASES}
    overlay = deployer.project / "environments" / e / "values.yaml"
    edit(
        overlay,
        "platform-config:\n  environment: dev\n",
        "platform-config:\n  environment: dev\n  region: moon-1\n",
    )
    # api's pods can never be scheduled: its upgrade times out and fails.
    edit(overlay, "api:\n", "api:\n  nodeSelector: {disk: none}\n")
    overlay.write_text(overlay.read_text() + "worker:\n  concurrency: 9\n")
    edit(deployer.project / "deployer.yaml", "  timeout: 120", "  timeout: 15")
    progress = {"DEPLOYER_PROGRESS_SECONDS": "4"}
    result = deployer("apply", "-e", e, "--rollback-on-failure", "--output", "json", env=progress)
    assert result.code == 1, result.err
    report = {s["key"]: s for s in json.loads(result.out)["releases"]}
    # In a CI log, the wait is never silent; and helm's bare "context deadline exceeded" is explained.
    assert f"{namespace}/api: upgrade still running (" in result.err
    assert "s of its 15s timeout)" in result.err
    assert "not ready within the release's timeout, 15s" in report[f"{namespace}/api"]["detail"], report
    assert report[f"{namespace}/platform-config"]["status"] == "rolled back"
    assert report[f"{namespace}/platform-config"]["restored"] == "rolled back to revision 1"
    assert report[f"{namespace}/api"]["status"] == "failed"
    # The failed release is put back too, not only those that succeeded before it failed.
    assert report[f"{namespace}/api"]["restored"] == "rolled back to revision 1"
    assert report[f"{namespace}/worker"]["status"] in ("skipped",)  # worker needs api
    assert {name: deployer.manifest(name, namespace) for name in RELEASES} == before


def test_a_held_lock_makes_a_second_apply_fail_clearly_and_change_nothing(
    deployer: Deployer, namespace: str, kubeconfig: Path
) -> None:
    e = f"dev-{namespace[-8:]}"
    name = lease_name("gitops", e)  # the project is named after the spec's directory
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "holderIdentity": "alice@laptop pid 42",
            "leaseDurationSeconds": 600,
            "renewTime": "2099-01-01T00:00:00.000000Z",
            "acquireTime": "2099-01-01T00:00:00.000000Z",
        },
    }
    subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "apply", "-f", "-"],
        input=json.dumps(lease),
        text=True,
        check=True,
        capture_output=True,
    )
    result = deployer("apply", "-e", e, "--lock-timeout", "1")
    assert result.code == 1
    assert (
        f"error: environment '{e}' of project 'gitops' is locked by alice@laptop pid 42 "
        f"(Lease default/{name})" in result.err
    )
    assert all(deployer.revision(release, namespace) == 0 for release in RELEASES)
    unlocked = deployer("unlock", "-e", e, "--force")
    assert unlocked.out == f"removed Lease default/{name} held by alice@laptop pid 42\n"
    assert deployer("unlock", "-e", e, "--force").out == f"{e} was not locked: no Lease default/{name}\n"
    assert deployer("apply", "-e", e).code == 0


def test_two_concurrent_applies_never_interleave(deployer: Deployer, namespace: str) -> None:
    e = f"dev-{namespace[-8:]}"
    first = deployer.subprocess("apply", "-e", e)
    second = deployer.subprocess("apply", "-e", e, "--lock-timeout", "300")
    outs = [p.communicate(timeout=600) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outs
    # One run installed everything; the other waited for the lock, then found nothing to do.
    assert sorted(o[0].splitlines()[-1].split(":")[0] for o in outs) == ["Apply complete", "No changes"]
    assert {name: deployer.revision(name, namespace) for name in RELEASES} == dict.fromkeys(RELEASES, 1)


def test_the_wrong_kube_context_is_refused_before_anything_changes(
    deployer: Deployer, namespace: str
) -> None:
    e = f"prod-{namespace[-8:]}"
    # The environment's kubeContext is selected (not the kubeconfig's current context), and the
    # kubeconfig has no such context.
    result = deployer("apply", "-e", e, "--yes", env={"PROD_KUBE_CONTEXT": "prod-eu-1"})
    assert result.code == 1
    assert result.err.endswith(
        f"error: kube context 'prod-eu-1' (kubeContext of environment '{e}') not found in "
        f"{deployer.kubeconfig} (known: sandbox)\n"
        "  hint: pass --kube-context NAME, or add the context to the kubeconfig\n"
    )
    # An explicit --kube-context other than the environment's is refused too.
    result = deployer(
        "apply", "-e", e, "--yes", "--kube-context", "sandbox", env={"PROD_KUBE_CONTEXT": "prod-eu-1"}
    )
    assert result.code == 1
    assert result.err.endswith(
        f"error: environment '{e}' must run against kube context 'prod-eu-1', but --kube-context is "
        "'sandbox'\n  hint: drop --kube-context (the environment selects 'prod-eu-1'); nothing was done\n"
    )
    assert all(deployer.revision(name, namespace) == 0 for name in RELEASES)


def test_a_protected_environment_needs_yes(deployer: Deployer, namespace: str) -> None:
    e = f"prod-{namespace[-8:]}"
    refused = deployer("apply", "-e", e)
    assert refused.code == 1
    assert f"error: environment '{e}' is protected: apply needs confirmation" in refused.err
    assert all(deployer.revision(name, namespace) == 0 for name in RELEASES)
    assert deployer("apply", "-e", e, "--yes").code == 0


def test_on_a_terminal_apply_draws_a_live_table(deployer: Deployer, namespace: str, tmp_path: Path) -> None:
    e = f"dev-{namespace[-8:]}"
    env = {k: v for k, v in deployer.env().items() if v is not None}
    command = f"{sys.executable} -m deployer apply -e {e}"
    # `script` gives the command a real terminal, as a user at a shell has.
    terminal = {**os.environ, **env, "TERM": "xterm", "COLUMNS": "200"}
    proc = subprocess.run(
        ["script", "-qec", command, "/dev/null"],
        cwd=deployer.project,
        capture_output=True,
        text=True,
        env=terminal,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", proc.stdout)
    assert re.search(r"RELEASE\s+ACTION\s+STATE\s+ELAPSED", screen)
    assert re.search(rf"{namespace}/worker\s+install\s+succeeded\s+\d+\.\d+s", screen)
    assert "Apply complete: 3 succeeded." in screen
