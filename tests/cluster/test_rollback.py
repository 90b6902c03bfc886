"""rollback of a whole run and of one release, destroy, and prune that never touches foreign releases."""

from __future__ import annotations

from pathlib import Path

import pytest

from testing.chartrepo import make_chart
from testing.cluster_run import Deployer
from testing.example import copy_example

RELEASES = ("platform-config", "api", "worker")


@pytest.fixture
def deployer(tmp_path: Path, namespace: str, helm: Path, kubeconfig: Path, cache: Path) -> Deployer:
    project = copy_example(tmp_path / "gitops", namespace=namespace, env_suffix=f"-{namespace[-8:]}")
    return Deployer(project, helm, kubeconfig, cache)


def test_rollback_undoes_every_release_the_last_apply_changed(deployer: Deployer, namespace: str) -> None:
    e = f"dev-{namespace[-8:]}"
    assert deployer("apply", "-e", e).code == 0
    first = {name: deployer.manifest(name, namespace) for name in RELEASES}
    overlay = deployer.project / "environments" / e / "values.yaml"
    overlay.write_text(overlay.read_text() + "worker:\n  concurrency: 5\n")
    overlay.write_text(overlay.read_text().replace("environment: dev", "environment: dev-2"))
    assert deployer("apply", "-e", e).code == 0
    assert deployer.revision("worker", namespace) == deployer.revision("platform-config", namespace) == 2

    result = deployer("rollback", "-e", e)
    assert result.code == 0, result.err
    assert result.out == (
        f"{namespace}/worker\trolled back to revision 1\n"
        f"{namespace}/platform-config\trolled back to revision 1\n"
    )
    assert {name: deployer.manifest(name, namespace) for name in RELEASES} == first
    assert deployer.revision("api", namespace) == 1  # untouched by that run


def test_rollback_of_one_release_to_a_revision(deployer: Deployer, namespace: str) -> None:
    e = f"dev-{namespace[-8:]}"
    assert deployer("apply", "-e", e).code == 0
    overlay = deployer.project / "environments" / e / "values.yaml"
    overlay.write_text(overlay.read_text() + "worker:\n  concurrency: 5\n")
    assert deployer("apply", "-e", e).code == 0
    result = deployer("rollback", "-e", e, "worker", "--revision", "1")
    assert result.out == f"{namespace}/worker\trolled back to revision 1\n"
    assert deployer.history("worker", namespace)[-1]["description"] == "Rollback to 1"


def test_destroy_uninstalls_dependents_first(deployer: Deployer, namespace: str) -> None:
    e = f"dev-{namespace[-8:]}"
    assert deployer("apply", "-e", e).code == 0
    result = deployer("destroy", "-e", e)
    assert result.code == 0, result.err
    assert result.out == "".join(
        f"{namespace}/{n}\tuninstalled\n" for n in ("worker", "api", "platform-config")
    )
    assert all(deployer.revision(name, namespace) == 0 for name in RELEASES)


def test_prune_removes_only_our_releases_that_left_the_spec(
    deployer: Deployer, namespace: str, tmp_path: Path
) -> None:
    e = f"dev-{namespace[-8:]}"
    assert deployer("apply", "-e", e).code == 0
    foreign = make_chart(tmp_path / "foreign", "foreign", "1.0.0")
    deployer.helm_cmd("install", "foreign", str(foreign), "--namespace", namespace)
    spec = deployer.project / "deployer.yaml"
    text = spec.read_text()
    spec.write_text(text[: text.index("  - name: worker")])

    without = deployer("apply", "-e", e)
    assert without.out == f"No changes: 2 release(s) in {e} are up to date.\n"
    assert deployer.revision("worker", namespace) == 1

    pruned = deployer("apply", "-e", e, "--prune")
    assert pruned.code == 0, pruned.err
    assert f"{namespace}/worker\tprune\tsucceeded" in pruned.out
    assert deployer.revision("worker", namespace) == 0
    assert deployer.revision("foreign", namespace) == 1
