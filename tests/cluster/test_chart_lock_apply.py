"""A range locked in deployer.lock.yaml, applied to the sandbox on both helm majors: it converges,
and a lock update is an upgrade that diff shows as a chart version change, then converges again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.chartrepo import ChartRepo, make_chart, package, published
from testing.cluster_run import Deployer


@pytest.fixture
def repo(tmp_path: Path, helm: Path) -> Iterator[ChartRepo]:
    with published(tmp_path, helm) as served:
        yield served


@pytest.fixture
def deployer(tmp_path: Path, helm: Path, kubeconfig: Path, cache: Path) -> Deployer:
    return Deployer(tmp_path / "p", helm, kubeconfig, cache)


def test_a_locked_range_converges_and_a_lock_update_is_an_upgrade_diff_shows(
    tmp_path: Path, helm: Path, deployer: Deployer, namespace: str, repo: ChartRepo
) -> None:
    project = deployer.project
    project.mkdir()
    (project / "deployer.yaml").write_text(
        f"project: lock-{namespace[-8:]}\n"
        f"repositories:\n  - name: local\n    url: {repo.url}\n"
        f"defaults: {{namespace: {namespace}, timeout: 120}}\n"
        "environments: {dev: {}}\n"
        'releases:\n  - name: greeter\n    chart: local/hello\n    version: "^1.0"\n'
    )
    assert deployer("lock").code == 0
    applied = deployer("apply", "-e", "dev")
    assert applied.code == 0, applied.err
    assert deployer("diff", "-e", "dev", "--detailed-exitcode").code == 0
    assert deployer("apply", "-e", "dev").code == 0
    assert "hello-1.1.0" in deployer.helm_cmd("list", "-n", namespace)
    assert deployer.helm_cmd("history", "greeter", "-n", namespace).count("\n") == 2  # header + 1

    package(helm, make_chart(tmp_path / "src", "hello", "1.2.0"), repo.root)
    repo.reindex(helm)
    assert deployer("diff", "-e", "dev", "--detailed-exitcode").code == 0  # not locked: not wanted
    assert deployer("lock").code == 0
    diff = deployer("diff", "-e", "dev", "--detailed-exitcode", "--no-color")
    assert diff.code == 2, diff.err
    assert "hello 1.1.0 -> 1.2.0" in diff.out
    assert deployer("apply", "-e", "dev").code == 0
    assert "hello-1.2.0" in deployer.helm_cmd("list", "-n", namespace)
    assert deployer("diff", "-e", "dev", "--detailed-exitcode").code == 0
