"""The Git edge: a temporary worktree of the spec as of a ref (for `diff --base`), via gitpython."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deployer.errors import UsageError


def _repo(path: Path) -> object:
    import git

    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UsageError(
            f"{path} is not inside a Git repository", hint="--base needs the spec in a Git checkout"
        ) from None


def toplevel(path: Path) -> Path:
    repo = _repo(path)
    return Path(repo.working_tree_dir).resolve()  # type: ignore[attr-defined]


@contextmanager
def worktree_at(path: Path, ref: str) -> Iterator[Path]:
    """A detached, temporary checkout of `ref`, removed afterwards."""
    import git

    repo = _repo(path)
    try:
        commit = repo.commit(ref)  # type: ignore[attr-defined]
    except (git.BadName, ValueError, git.GitCommandError):
        raise UsageError(
            f"Git ref '{ref}' not found in {toplevel(path)}",
            hint=f"fetch it first (e.g. git fetch {_fetch_args(ref)}), or check the name",
        ) from None
    tmp = Path(tempfile.mkdtemp(prefix="deployer-base-"))
    target = tmp / "tree"
    try:
        repo.git.worktree("add", "--detach", str(target), commit.hexsha)  # type: ignore[attr-defined]
        yield target
    finally:
        with contextlib.suppress(git.GitCommandError):
            repo.git.worktree("remove", "--force", str(target))  # type: ignore[attr-defined]
        shutil.rmtree(tmp, ignore_errors=True)
        repo.git.worktree("prune")  # type: ignore[attr-defined]


def _fetch_args(ref: str) -> str:
    remote, _, branch = ref.partition("/")
    return f"{remote} {branch}" if branch and remote == "origin" else f"origin {ref}"
