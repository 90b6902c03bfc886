"""Git repositories for tests, made and driven as a CI runner would (an identity set, output kept)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from testing.example import copy_example


def git(repo: Path, *args: str) -> str:
    """`git -C repo ARGS...`; its stdout as printed."""
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.email=ci@example.com", "-c", "user.name=CI", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def example_repo(path: Path) -> Path:
    """The repository's example project as a Git repository of its own, with one commit `base`."""
    root = copy_example(path)
    (root / ".gitignore").write_text("charts/*/charts/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    return root
