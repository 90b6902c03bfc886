"""Version ranges and deployer.lock.yaml, against a real chart repository and a real OCI registry on
loopback, with both helm majors: lock, a newer version published (lock --check fails, lock moves it),
and a version re-published with other content (refused before anything is rendered)."""

from __future__ import annotations

import difflib
import hashlib
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from testing.chartrepo import ChartRepo, make_chart, package, published
from testing.cli import Result, run
from testing.gitrepo import git
from testing.registry import Registry, oci_registry
from testing.tools import tool_dir

pytestmark = [pytest.mark.helm, pytest.mark.registry]


@pytest.fixture
def repo(tmp_path: Path, helm: Path) -> Iterator[ChartRepo]:
    with published(tmp_path, helm) as served:
        yield served


def spec(root: Path, repositories: str, chart: str, version: str | None, extra: str = "") -> Path:
    root.mkdir(exist_ok=True)
    version_line = f'    version: "{version}"\n' if version is not None else ""
    (root / "deployer.yaml").write_text(
        "repositories:\n"
        + textwrap.indent(repositories, "  ")
        + "\nenvironments: {dev: {}, prod: {}}\nreleases:\n  - name: greeter\n"
        + f"    chart: {chart}\n"
        + version_line
        + extra
    )
    return root


def chart_label(manifest: str) -> str:
    [doc] = [d for d in yaml.safe_load_all(manifest) if d]
    return str(doc["metadata"]["labels"]["chart"])


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def deployer(helm: Path, proj: Path, *argv: str, cache: Path | None = None) -> Result:
    env: dict[str, str | None] = {"DEPLOYER_HELM": str(helm)}
    if cache is not None:
        env["DEPLOYER_CACHE_DIR"] = str(cache)
    return run(list(argv), proj, env)


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_a_repository_range_is_locked_moved_by_lock_and_a_republished_version_is_refused(
    tmp_path: Path, helm: Path, repo: ChartRepo, cache: Path
) -> None:
    proj = spec(tmp_path / "p", f"- name: local\n  url: {repo.url}", "local/hello", "^1.0")
    unlocked = deployer(helm, proj, "template", "-e", "dev")
    assert unlocked.code == 1
    assert "release 'default/greeter' asks for chart local/hello version '^1.0'" in unlocked.err
    assert "deployer.yaml:8:14" in unlocked.err and "deployer lock" in unlocked.err

    locked = deployer(helm, proj, "lock")
    assert locked.code == 0, locked.err
    lock_file = proj / "deployer.lock.yaml"
    text = lock_file.read_text()
    data = yaml.safe_load(text)
    [entry] = data["releases"]["default/greeter"]  # dev and prod resolve the same: one entry
    assert entry["environments"] == ["dev", "prod"]
    assert entry["version"] == "1.1.0"
    assert entry["digest"] == sha256(repo.root / "hello-1.1.0.tgz")
    assert (entry["chart"], entry["repository"], entry["range"]) == ("local/hello", repo.url, "^1.0")
    git(proj, "init", "-q", "-b", "main")
    git(proj, "add", "-A")
    git(proj, "commit", "-qm", "locked at 1.1.0")

    rendered = deployer(helm, proj, "template", "-e", "dev")
    assert rendered.code == 0, rendered.err
    assert chart_label(rendered.out) == "hello-1.1.0"
    assert deployer(helm, proj, "lock", "--check").code == 0

    package(helm, make_chart(tmp_path / "src", "hello", "1.2.0"), repo.root)
    repo.reindex(helm)
    repo.requests.clear()
    again = deployer(helm, proj, "template", "-e", "dev")
    assert chart_label(again.out) == "hello-1.1.0"  # the lock, not the repository, decides
    assert repo.requests == []  # and no index is read to know it

    check = deployer(helm, proj, "lock", "--check")
    assert check.code == 1
    assert "default/greeter (dev): 1.2.0 is the newest match of '^1.0' (locked: 1.1.0)" in check.out
    assert "default/greeter (prod)" in check.out
    assert lock_file.read_text() == text  # --check writes nothing

    moved = deployer(helm, proj, "lock")
    assert moved.code == 0, moved.err
    assert "wrote deployer.lock.yaml" in moved.out
    after = lock_file.read_text()
    assert changed_lines(text, after) == [
        '-      version: "1.1.0"',
        f'-      digest: "{sha256(repo.root / "hello-1.1.0.tgz")}"',
        '+      version: "1.2.0"',
        f'+      digest: "{sha256(repo.root / "hello-1.2.0.tgz")}"',
    ]
    assert deployer(helm, proj, "lock").out.strip() == "deployer.lock.yaml is up to date"

    # diff against the commit before the lock moved: the chart change, as any chart change shows.
    diff = deployer(helm, proj, "diff", "-e", "dev", "--base", "HEAD", "--no-color")
    assert diff.code == 0, diff.err
    assert "hello 1.1.0 -> 1.2.0" in diff.out


def test_a_version_republished_with_other_content_is_refused_naming_both_digests(
    tmp_path: Path, helm: Path, repo: ChartRepo, cache: Path
) -> None:
    proj = spec(tmp_path / "p", f"- name: local\n  url: {repo.url}", "local/hello", "~1.1")
    assert deployer(helm, proj, "lock").code == 0
    assert chart_label(deployer(helm, proj, "template", "-e", "dev").out) == "hello-1.1.0"
    locked_digest = sha256(repo.root / "hello-1.1.0.tgz")
    package(helm, make_chart(tmp_path / "again", "hello", "1.1.0", extra_template="# changed\n"), repo.root)
    repo.reindex(helm)
    pushed_digest = sha256(repo.root / "hello-1.1.0.tgz")
    assert pushed_digest != locked_digest
    # A runner with an empty cache pulls the new archive, and refuses it before rendering anything.
    refused = deployer(helm, proj, "template", "-e", "dev", cache=tmp_path / "fresh-cache")
    assert refused.code == 1
    assert refused.out == ""
    assert f"the archive pulled has digest {pushed_digest}" in refused.err
    assert f"deployer.lock.yaml locks {locked_digest}" in refused.err
    check = deployer(helm, proj, "lock", "--check")
    assert check.code == 1
    assert locked_digest in check.err and pushed_digest in check.err


def test_an_environment_override_and_devel_resolve_their_own_versions(
    tmp_path: Path, helm: Path, repo: ChartRepo, cache: Path
) -> None:
    package(helm, make_chart(tmp_path / "src", "hello", "1.2.0-rc.1"), repo.root)
    repo.reindex(helm)
    repositories = f"- name: local\n  url: {repo.url}"
    proj = spec(tmp_path / "p", repositories, "local/hello", "~1.0.0")
    (proj / "deployer.yaml").write_text(
        (proj / "deployer.yaml")
        .read_text()
        .replace("prod: {}", 'prod: {releases: {greeter: {version: "^1"}}}')
    )
    assert deployer(helm, proj, "lock", "-e", "prod").code == 0
    prod_only = yaml.safe_load((proj / "deployer.lock.yaml").read_text())["releases"]["default/greeter"]
    assert [(e["environments"], e["version"]) for e in prod_only] == [(["prod"], "1.1.0")]
    assert deployer(helm, proj, "template", "-e", "dev").code == 1  # dev is not locked yet

    assert deployer(helm, proj, "lock").code == 0
    entries = yaml.safe_load((proj / "deployer.lock.yaml").read_text())["releases"]["default/greeter"]
    assert [(e["environments"], e["version"]) for e in entries] == [(["dev"], "1.0.0"), (["prod"], "1.1.0")]
    assert chart_label(deployer(helm, proj, "template", "-e", "dev").out) == "hello-1.0.0"
    assert chart_label(deployer(helm, proj, "template", "-e", "prod").out) == "hello-1.1.0"

    (proj / "deployer.yaml").write_text((proj / "deployer.yaml").read_text() + "    devel: true\n")
    stale = deployer(helm, proj, "template", "-e", "prod")
    assert stale.code == 0  # 1.1.0 still matches ^1: the lock is stale for CI, not broken
    check = deployer(helm, proj, "lock", "--check", "-e", "prod")
    assert check.code == 1 and "'^1' with devel" in check.out
    assert deployer(helm, proj, "lock").code == 0
    assert chart_label(deployer(helm, proj, "template", "-e", "prod").out) == "hello-1.2.0-rc.1"


def test_an_exact_version_works_unlocked_and_its_digest_is_recorded_by_lock(
    tmp_path: Path, helm: Path, repo: ChartRepo, cache: Path
) -> None:
    proj = spec(tmp_path / "p", f"- name: local\n  url: {repo.url}", "local/hello", "1.0.0")
    assert chart_label(deployer(helm, proj, "template", "-e", "dev").out) == "hello-1.0.0"
    assert deployer(helm, proj, "lock", "--check").code == 1  # not locked yet
    assert deployer(helm, proj, "lock").code == 0
    [entry] = yaml.safe_load((proj / "deployer.lock.yaml").read_text())["releases"]["default/greeter"]
    assert "range" not in entry
    assert (entry["version"], entry["digest"]) == ("1.0.0", sha256(repo.root / "hello-1.0.0.tgz"))
    assert chart_label(deployer(helm, proj, "template", "-e", "dev").out) == "hello-1.0.0"
    spec(proj, f"- name: local\n  url: {repo.url}", "local/hello", "1.1.0")
    # An exact version the lock has not seen still renders; --check says the lock lags.
    assert chart_label(deployer(helm, proj, "template", "-e", "dev").out) == "hello-1.1.0"
    check = deployer(helm, proj, "lock", "--check")
    assert check.code == 1
    assert "stale: default/greeter (dev): the spec asks for 1.1.0, locked: 1.0.0" in check.out
    assert deployer(helm, proj, "lock").code == 0

    spec_file = proj / "deployer.yaml"
    spec_file.write_text(spec_file.read_text().replace(", prod: {}", ""))  # prod leaves the spec
    check = deployer(helm, proj, "lock", "--check")
    assert check.code == 1
    assert "stale: default/greeter (prod): locked, but no longer a repository release" in check.out
    assert deployer(helm, proj, "lock").code == 0
    [entry] = yaml.safe_load((proj / "deployer.lock.yaml").read_text())["releases"]["default/greeter"]
    assert entry["environments"] == ["dev"]


def test_a_range_nothing_matches_is_an_error_at_its_line_and_writes_nothing(
    tmp_path: Path, helm: Path, repo: ChartRepo, cache: Path
) -> None:
    proj = spec(tmp_path / "p", f"- name: local\n  url: {repo.url}", "local/hello", ">=2.0 <3")
    result = deployer(helm, proj, "lock")
    assert result.code == 1
    assert (
        "deployer.yaml:8:14: release 'default/greeter': chart local/hello has no version matching '>=2.0 <3'"
        in (result.err)
    )
    assert "newest: 1.1.0, 1.0.0" in result.err
    assert not (proj / "deployer.lock.yaml").exists()


def crane_digest(image: str) -> str:
    crane = tool_dir("crane") / "crane"
    done = subprocess.run(
        [str(crane), "digest", image, "--insecure"], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def push(registry: Registry, helm: Path, tmp: Path, version: str, *, extra: str = "") -> Path:
    tgz = package(
        helm,
        make_chart(tmp / f"src-{version}-{len(extra)}", "hello", version, extra_template=extra),
        tmp / "pkg",
    )
    registry.push(helm, tgz, {"HOME": str(tmp), "PATH": "/usr/bin:/bin"})
    return tgz


@pytest.mark.parametrize("style", ["oci-url", "oci-repository"])
def test_an_oci_range_is_locked_with_both_digests_moved_by_lock_and_a_repushed_tag_is_refused(
    tmp_path: Path, helm: Path, cache: Path, style: str
) -> None:
    with oci_registry(tmp_path / "registry.log") as registry:
        push(registry, helm, tmp_path, "1.0.0")
        first = push(registry, helm, tmp_path, "1.1.0")
        chart = f"oci://{registry.host}/charts/hello" if style == "oci-url" else "local/hello"
        repositories = f"- name: local\n  url: oci://{registry.host}/charts\n  plainHttp: true"
        proj = spec(tmp_path / "p", repositories, chart, None)  # no version: the newest
        locked = deployer(helm, proj, "lock")
        assert locked.code == 0, locked.err
        text = (proj / "deployer.lock.yaml").read_text()
        [entry] = yaml.safe_load(text)["releases"]["default/greeter"]
        assert (entry["chart"], entry["range"], entry["version"]) == (
            f"oci://{registry.host}/charts/hello",
            "*",
            "1.1.0",
        )
        assert entry["digest"] == sha256(first)
        assert entry["ociDigest"] == crane_digest(f"{registry.host}/charts/hello:1.1.0")
        assert chart_label(deployer(helm, proj, "template", "-e", "prod").out) == "hello-1.1.0"

        second = sha256(push(registry, helm, tmp_path, "1.2.0"))
        check = deployer(helm, proj, "lock", "--check")
        assert check.code == 1
        assert "default/greeter (dev): 1.2.0 is the newest match of '*' (locked: 1.1.0)" in check.out
        assert deployer(helm, proj, "lock").code == 0
        after = (proj / "deployer.lock.yaml").read_text()
        changed = changed_lines(text, after)
        assert len(changed) == 6
        assert '+      version: "1.2.0"' in changed and f'+      digest: "{second}"' in changed
        fields = ["version", "digest", "ociDigest"]
        assert [line.split(":")[0] for line in changed] == [
            f"{sign}      {f}" for sign in "-+" for f in fields
        ]
        assert chart_label(deployer(helm, proj, "template", "-e", "dev").out) == "hello-1.2.0"

        repushed = push(registry, helm, tmp_path, "1.2.0", extra="# changed\n")
        refused = deployer(helm, proj, "template", "-e", "dev", cache=tmp_path / "fresh-cache")
        assert refused.code == 1
        assert refused.out == ""
        assert f"the archive pulled has digest {sha256(repushed)}" in refused.err
        assert f"deployer.lock.yaml locks {second}" in refused.err


def test_a_cached_archive_that_differs_from_the_lock_is_pulled_again(
    tmp_path: Path, helm: Path, repo: ChartRepo, cache: Path
) -> None:
    proj = spec(tmp_path / "p", f"- name: local\n  url: {repo.url}", "local/hello", "~1.1")
    assert deployer(helm, proj, "lock").code == 0
    first = deployer(helm, proj, "template", "-e", "dev")
    [cached] = list((cache / "charts").glob("hello-1.1.0-*.tgz"))
    cached.write_bytes(b"not the locked archive")
    repo.requests.clear()
    again = deployer(helm, proj, "template", "-e", "dev")
    assert again.code == 0, again.err
    assert again.out == first.out
    assert "/hello-1.1.0.tgz" in repo.requests
    assert sha256(cached) == sha256(repo.root / "hello-1.1.0.tgz")
