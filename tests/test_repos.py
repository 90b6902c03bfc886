"""Repository charts against a real chart repository on loopback: add, pull, cache, pinning, auth."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from testing.chartrepo import ChartRepo, make_chart, package, published, serve
from testing.cli import run
from testing.fakes import RecordingHelm

pytestmark = [pytest.mark.helm, pytest.mark.registry]


@pytest.fixture
def repo(tmp_path: Path, helm: Path) -> Iterator[ChartRepo]:
    with published(tmp_path, helm) as served:
        yield served


def project(root: Path, url: str, version: str = "1.0.0", repo_name: str = "example") -> Path:
    root.mkdir(exist_ok=True)
    (root / "deployer.yaml").write_text(
        textwrap.dedent(f"""\
        repositories:
          - name: {repo_name}
            url: {url}
        environments: {{dev: {{}}}}
        releases:
          - name: greeter
            namespace: demo
            chart: {repo_name}/hello
            version: "{version}"
            values: [{{greeting: hi}}]
        """)
    )
    return root


def chart_label(manifest: str) -> str:
    [doc] = [d for d in yaml.safe_load_all(manifest) if d]
    return str(doc["metadata"]["labels"]["chart"])


def test_a_pinned_repository_chart_is_pulled_once_then_rendered_with_no_network(
    tmp_path: Path, helm: Path, repo: ChartRepo, cache: Path
) -> None:
    proj = project(tmp_path / "p", repo.url)
    first = run(["template", "-e", "dev"], proj, {"DEPLOYER_HELM": str(helm)})
    assert first.code == 0, first.err
    assert chart_label(first.out) == "hello-1.0.0"
    assert 'greeting: "hi"' in first.out
    assert "/index.yaml" in repo.requests and "/hello-1.0.0.tgz" in repo.requests

    repo.requests.clear()
    second = run(["template", "-e", "dev"], proj, {"DEPLOYER_HELM": str(helm)})
    assert second.code == 0, second.err
    assert second.out == first.out
    assert repo.requests == []


def test_changing_the_pinned_version_renders_that_version(
    tmp_path: Path, helm: Path, repo: ChartRepo, cache: Path
) -> None:
    proj = project(tmp_path / "p", repo.url, "1.0.0")
    assert (
        chart_label(run(["template", "-e", "dev"], proj, {"DEPLOYER_HELM": str(helm)}).out) == "hello-1.0.0"
    )
    project(proj, repo.url, "1.1.0")
    result = run(["template", "-e", "dev"], proj, {"DEPLOYER_HELM": str(helm)})
    assert chart_label(result.out) == "hello-1.1.0"


def test_a_version_published_after_the_index_was_cached_is_found_by_one_refresh(
    tmp_path: Path, helm: Path, repo: ChartRepo, cache: Path
) -> None:
    proj = project(tmp_path / "p", repo.url, "1.0.0")
    assert run(["template", "-e", "dev"], proj, {"DEPLOYER_HELM": str(helm)}).code == 0
    package(helm, make_chart(tmp_path / "src2", "hello", "1.2.0"), repo.root)
    repo.reindex(helm)
    project(proj, repo.url, "1.2.0")
    result = run(["template", "-e", "dev"], proj, {"DEPLOYER_HELM": str(helm)})
    assert result.code == 0, result.err
    assert chart_label(result.out) == "hello-1.2.0"


def test_a_version_that_does_not_exist_fails_with_helms_reason(
    tmp_path: Path, helm: Path, repo: ChartRepo, cache: Path
) -> None:
    proj = project(tmp_path / "p", repo.url, "9.9.9")
    result = run(["template", "-e", "dev"], proj, {"DEPLOYER_HELM": str(helm)})
    assert result.code == 1
    assert "error: helm exited with code 1: helm pull example/hello --version 9.9.9" in result.err
    assert "9.9.9" in result.err.split("  | ", 1)[1]


def test_repos_refreshes_an_index_only_when_missing_stale_or_asked(
    tmp_path: Path, helm: Path, repo: ChartRepo, cache: Path
) -> None:
    proj = project(tmp_path / "p", repo.url)
    env = {"DEPLOYER_HELM": str(helm)}
    first = run(["repos"], proj, env)
    assert first.out == f"example\t{repo.url}\tadded\n"
    repo.requests.clear()
    assert run(["repos"], proj, env).out == f"example\t{repo.url}\tfresh\n"
    assert repo.requests == []
    assert run(["repos", "--refresh"], proj, env).out == f"example\t{repo.url}\tupdated\n"
    assert repo.requests == ["/index.yaml"]


def test_repository_credentials_come_from_the_environment_and_never_reach_argv_or_output(
    tmp_path: Path, helm: Path, cache: Path
) -> None:
    root = tmp_path / "private"
    package(helm, make_chart(tmp_path / "src", "hello", "1.0.0"), root)
    password = "canary-Pa55word-7f3"
    with serve(root, username="deploy", password=password) as private:
        private.reindex(helm)
        proj = project(tmp_path / "p", private.url, repo_name="private")
        recorder = RecordingHelm(helm, tmp_path / "recorder")
        env = {
            "DEPLOYER_HELM": str(recorder.path),
            "DEPLOYER_REPO_PRIVATE_USERNAME": "deploy",
            "DEPLOYER_REPO_PRIVATE_PASSWORD": password,
        }
        result = run(["template", "-e", "dev"], proj, env)
        assert result.code == 0, result.err
        assert chart_label(result.out) == "hello-1.0.0"
        assert password not in result.out + result.err
        assert not any(password in arg for argv in recorder.calls() for arg in argv)

        denied = run(
            ["template", "-e", "dev"],
            project(tmp_path / "q", private.url, "1.0.0", "other"),
            {"DEPLOYER_HELM": str(helm)},
        )
        assert denied.code == 1
        assert "401" in denied.err
