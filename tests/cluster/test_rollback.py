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
    assert (
        f"note: {namespace}/worker left the spec and is kept (labelled for project gitops, environment "
        f"{e}): `deployer apply --prune` uninstalls it" in without.err
    )
    assert deployer.revision("worker", namespace) == 1

    pruned = deployer("apply", "-e", e, "--prune")
    assert pruned.code == 0, pruned.err
    assert f"{namespace}/worker\tprune\tsucceeded" in pruned.out
    assert deployer.revision("worker", namespace) == 0
    assert deployer.revision("foreign", namespace) == 1


def test_destroy_uninstalls_only_what_this_project_deployed_to_this_environment(
    deployer: Deployer, namespace: str, tmp_path: Path
) -> None:
    e = f"dev-{namespace[-8:]}"
    assert deployer("apply", "-e", e).code == 0
    # Same names, other owners: api now belongs to project books, worker was installed by hand.
    chart = make_chart(tmp_path / "by-hand", "by-hand", "1.0.0")
    for name in ("worker", "api"):
        deployer.helm_cmd("uninstall", name, "--namespace", namespace)
    deployer.helm_cmd("install", "worker", str(chart), "--namespace", namespace)
    labels = f"deployer-project=books,deployer-environment={e}"
    deployer.helm_cmd("install", "api", str(chart), "--namespace", namespace, "--labels", labels)
    books = f"{namespace}/api\tleft alone: it belongs to project 'books', environment '{e}'\n"

    result = deployer("destroy", "-e", e)
    assert result.code == 0, result.err
    assert result.out == (
        books
        + f"{namespace}/worker\tleft alone: not labelled as deployed by project 'gitops' to environment "
        f"'{e}' (--include-unlabelled uninstalls it too)\n"
        f"{namespace}/platform-config\tuninstalled\n"
    )
    assert [deployer.revision(name, namespace) for name in RELEASES] == [0, 1, 1]

    unlabelled = deployer("destroy", "-e", e, "--include-unlabelled")
    assert unlabelled.code == 0, unlabelled.err
    assert unlabelled.out == books + f"{namespace}/worker\tuninstalled\n"
    assert [deployer.revision(name, namespace) for name in RELEASES] == [0, 1, 0]

    again = deployer("destroy", "-e", e, "--include-unlabelled")
    assert again.out == books + f"Nothing to destroy: no release of {e} is deployed by project 'gitops'.\n"
    assert deployer.revision("api", namespace) == 1


def test_destroy_of_a_protected_environment_needs_yes(deployer: Deployer, namespace: str) -> None:
    e = f"prod-{namespace[-8:]}"
    assert deployer("apply", "-e", e, "--yes").code == 0
    refused = deployer("destroy", "-e", e)
    assert refused.code == 1
    assert refused.err.endswith(
        f"error: environment '{e}' is protected: destroy needs confirmation\n"
        "  hint: re-run with --yes after reviewing the releases listed by `deployer status`\n"
    )
    assert all(deployer.revision(name, namespace) == 1 for name in RELEASES)
    result = deployer("destroy", "-e", e, "--yes")
    assert result.code == 0, result.err
    assert all(deployer.revision(name, namespace) == 0 for name in RELEASES)
