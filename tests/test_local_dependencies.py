"""A local chart whose dependencies come from a chart repository and whose `charts/` is kept out of
Git (.gitignore, as kube-prometheus-stack's users keep it): the `--base` worktree has no subcharts,
so deployer builds them, with the repository's index fetched as for any repository chart."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.chartrepo import ChartRepo, make_chart, package, serve
from testing.cli import run
from testing.gitrepo import git

pytestmark = pytest.mark.helm
OFFLINE = {"KUBECONFIG": "/nonexistent/kubeconfig"}


@pytest.fixture
def charts(tmp_path: Path, helm: Path) -> Iterator[ChartRepo]:
    root = tmp_path / "served"
    package(helm, make_chart(tmp_path / "src", "child", "0.1.0"), root)
    with serve(root) as served:
        served.reindex(helm)
        yield served


def umbrella_repo(path: Path, url: str, helm: Path, *, declared: bool = True, lock: bool = True) -> Path:
    """A Git repository: a local umbrella chart needing `child` from `url`, its charts/ ignored."""
    chart = path / "charts" / "umbrella"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        textwrap.dedent(f"""\
        apiVersion: v2
        name: umbrella
        version: 1.0.0
        dependencies:
          - name: child
            version: 0.1.0
            repository: {url}/
        """)
    )
    if lock:  # Chart.lock, committed as charts usually do; its charts/ stays out of Git
        home = path.parent / "author-helm"  # the chart author's own helm, not deployer's
        env = {f"HELM_{kind}_HOME": str(home / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")}
        subprocess.run(
            [str(helm), "dependency", "update", str(chart)], check=True, capture_output=True, env=env
        )
        shutil.rmtree(chart / "charts")
    (chart / "values.yaml").write_text("child:\n  greeting: hello\n")
    repos = f"repositories:\n  - name: loop\n    url: {url}\n" if declared else ""
    (path / "deployer.yaml").write_text(
        repos + "environments:\n  prod: {}\nreleases:\n  - name: shop\n    chart: ./charts/umbrella\n"
        "    namespace: apps\n"
    )
    (path / ".gitignore").write_text("charts/*/charts/\n")
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "base")
    (chart / "values.yaml").write_text("child:\n  greeting: bonjour\n")
    git(path, "commit", "-qam", "greet in French")
    return path


@pytest.mark.parametrize("lock", [True, False], ids=["chart-lock", "no-chart-lock"])
def test_a_gitignored_dependency_from_a_declared_repository_is_fetched_for_the_base_plan(
    tmp_path: Path, helm: Path, cache: Path, charts: ChartRepo, lock: bool
) -> None:
    repo = umbrella_repo(tmp_path / "gitops", charts.url, helm, lock=lock)
    charts.requests.clear()  # those of the chart author's `helm dependency update`
    result = run(
        ["diff", "-e", "prod", "--base", "HEAD~1", "--output", "json"],
        repo,
        {**OFFLINE, "DEPLOYER_HELM": str(helm)},
    )
    assert result.code == 0, result.err
    [release] = json.loads(result.out)["releases"]
    [resource] = release["resources"]
    assert resource["kind"] == "ConfigMap"
    changed = [x for x in resource["diff"].splitlines() if x[:1] in "+-" and x[:3] not in ("+++", "---")]
    assert changed == ["-  greeting: hello", "+  greeting: bonjour"]
    assert "/index.yaml" in charts.requests
    assert "no cached repository" not in result.err
    if lock:  # (without a Chart.lock, helm's dependency build writes one, as `helm dependency update`)
        assert git(repo, "status", "--porcelain") == ""  # nothing written in the tree but charts/


def test_a_dependency_from_an_undeclared_repository_is_one_line_naming_what_to_declare(
    tmp_path: Path, helm: Path, cache: Path, charts: ChartRepo
) -> None:
    repo = umbrella_repo(tmp_path / "gitops", charts.url, helm, declared=False)
    charts.requests.clear()  # those of the chart author's `helm dependency update`
    result = run(["diff", "-e", "prod", "--base", "HEAD~1"], repo, {**OFFLINE, "DEPLOYER_HELM": str(helm)})
    assert result.code == 1
    assert result.err.splitlines()[-2:] == [
        f"error: local chart umbrella needs child 0.1.0 from {charts.url}/, a repository deployer.yaml "
        "does not declare",
        f"  hint: add it under repositories: (- name: <any name>, url: {charts.url}) so deployer can "
        "fetch its index; nothing was changed",
    ]
    assert "helm-manager" not in result.err
    assert charts.requests == []
