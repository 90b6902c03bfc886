"""`diff --base` in a depth-1 clone (the default checkout of GitHub Actions): the base commit is not
there, so the user gets one error naming the exact `git fetch` that brings it, and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from testing.cli import Result, run
from testing.gitrepo import example_repo, git

pytestmark = pytest.mark.helm

OFFLINE = {"KUBECONFIG": "/nonexistent/kubeconfig", "API_KEY": None}


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    """The repository CI clones from: the example project with two commits."""
    src = example_repo(tmp_path / "upstream")
    overlay = src / "environments" / "dev" / "values.yaml"
    overlay.write_text(overlay.read_text() + "worker:\n  concurrency: 9\n")
    git(src, "commit", "-qam", "dev: more workers")
    return src


@pytest.fixture
def clone(upstream: Path, tmp_path: Path) -> Path:
    """A depth-1 clone, as actions/checkout makes by default (file:// so that --depth applies)."""
    dst = tmp_path / "checkout"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{upstream}", str(dst))
    assert (dst / ".git" / "shallow").read_text().split() == [git(dst, "rev-parse", "HEAD").strip()]
    return dst


def diff(clone: Path, helm: Path, base: str) -> Result:
    return run(["diff", "-e", "dev", "--base", base], clone, {**OFFLINE, "DEPLOYER_HELM": str(helm)})


def error_of(result: Result) -> str:
    """stderr without the timestamped progress lines."""
    return "".join(line for line in result.err.splitlines(keepends=True) if not line.startswith("["))


def test_a_parent_beyond_the_shallow_boundary_names_the_deepen_that_brings_it(
    clone: Path, helm: Path, cache: Path
) -> None:
    head = git(clone, "rev-parse", "HEAD").strip()
    result = diff(clone, helm, "HEAD~1")
    assert result.code == 1
    assert "Traceback" not in result.err
    assert error_of(result) == (
        f"error: base commit 'HEAD~1' is not in this clone: {clone} is a shallow clone "
        f"(its history stops at {head[:12]})\n"
        "  hint: fetch it with: git fetch --deepen=1 origin\n"
    )
    assert git(clone, "worktree", "list").count("\n") == 1  # no worktree was left behind

    git(clone, "fetch", "-q", "--deepen=1", "origin")  # exactly what the hint says
    fixed = diff(clone, helm, "HEAD~1")
    assert fixed.code == 0, fixed.err
    assert "~ shop/worker  upgrade" in fixed.out


def test_a_commit_id_not_in_the_clone_names_the_fetch_of_that_commit(
    clone: Path, upstream: Path, helm: Path, cache: Path
) -> None:
    first = git(upstream, "rev-parse", "HEAD~1").strip()
    result = diff(clone, helm, first)
    assert result.code == 1
    assert error_of(result).endswith(f"  hint: fetch it with: git fetch origin {first}\n")
    assert error_of(result).startswith(f"error: base commit '{first}' is not in this clone: ")

    git(clone, "fetch", "-q", "origin", first)
    assert diff(clone, helm, first).code == 0


def test_a_missing_remote_branch_names_its_fetch(clone: Path, helm: Path, cache: Path) -> None:
    result = diff(clone, helm, "origin/release")
    assert result.code == 1
    assert error_of(result).endswith("  hint: fetch it with: git fetch origin release\n")
