"""The Git edge: a temporary worktree of the spec as of a ref (for `diff --base`), via gitpython."""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
    sha = _resolve(repo, ref)
    tmp = Path(tempfile.mkdtemp(prefix="deployer-base-"))
    target = tmp / "tree"
    try:
        repo.git.worktree("add", "--detach", str(target), sha)  # type: ignore[attr-defined]
        yield target
    finally:
        with contextlib.suppress(git.GitCommandError):
            repo.git.worktree("remove", "--force", str(target))  # type: ignore[attr-defined]
        shutil.rmtree(tmp, ignore_errors=True)
        repo.git.worktree("prune")  # type: ignore[attr-defined]


def _resolve(repo: Any, ref: str) -> str:
    """The commit `ref` names, resolved by git itself: gitpython reads a shallow boundary's parent
    ids from the commit object and would hand back a commit whose objects are not in the clone."""
    sha = _rev_parse(repo, ref)
    if sha is not None:
        return sha
    root = Path(repo.working_tree_dir).resolve()
    boundary = _shallow_boundary(repo)
    if not boundary:
        raise UsageError(
            f"Git ref '{ref}' not found in {root}",
            hint=f"fetch it first (e.g. git fetch {_fetch_args(repo, ref)}), or check the name",
        )
    fetch = _shallow_fetch(repo, ref, boundary)
    if fetch is None:  # its history ends at the root commit, not at a shallow boundary
        raise UsageError(f"Git ref '{ref}' not found in {root}", hint="check the name")
    raise UsageError(
        f"base commit '{ref}' is not in this clone: {root} is a shallow clone "
        f"(its history stops at {', '.join(sorted(s[:12] for s in boundary))})",
        hint=f"fetch it with: git {fetch}",
    )


def _rev_parse(repo: Any, ref: str) -> str | None:
    import git

    try:
        return str(repo.git.rev_parse("--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"))
    except git.GitCommandError:
        return None


def _shallow_boundary(repo: Any) -> set[str]:
    """The commits listed in .git/shallow: present, but their parents are not (empty: a full clone)."""
    shallow = Path(repo.git.rev_parse("--git-path", "shallow"))
    if not shallow.is_absolute():
        shallow = Path(repo.working_tree_dir) / shallow
    return set(shallow.read_text().split()) if shallow.is_file() else set()


_ANCESTRY = re.compile(r"(~\d*|\^\d*)$")


def _shallow_fetch(repo: Any, ref: str, boundary: set[str]) -> str | None:
    """The git fetch arguments that bring `ref` into this shallow clone (None: nothing would)."""
    remote = _remote(repo)
    steps, base = 0, ref
    while (m := _ANCESTRY.search(base)) and m.start() > 0:
        suffix = m.group(1)
        count = int(suffix[1:] or 1)
        if suffix.startswith("^") and count != 1:
            return f"fetch --unshallow {remote}"  # a second parent: deepen until it is there
        steps, base = steps + count, base[: m.start()]
    if steps:
        start = _rev_parse(repo, base)
        if start is None:
            return _named_fetch(remote, base)
        chain = repo.git.rev_list("--first-parent", f"--max-count={steps + 1}", start).split()
        if chain[-1] not in boundary:
            return None
        return f"fetch --deepen={steps - (len(chain) - 1)} {remote}"
    return _named_fetch(remote, ref)


def _named_fetch(remote: str, ref: str) -> str:
    if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", ref):
        return f"fetch {remote} {ref}"  # servers such as GitHub's serve any commit by its full id
    if re.fullmatch(r"[0-9a-f]{4,39}", ref):
        return f"fetch --unshallow {remote}"  # an abbreviated id cannot be fetched by itself
    prefix = f"{remote}/"
    return f"fetch {remote} {ref.removeprefix(prefix)}"


def _remote(repo: Any) -> str:
    names = [r.name for r in repo.remotes]
    return "origin" if "origin" in names or not names else str(names[0])


def _fetch_args(repo: Any, ref: str) -> str:
    remote = _remote(repo)
    head, _, branch = ref.partition("/")
    return f"{remote} {branch}" if branch and head == remote else f"{remote} {ref}"
