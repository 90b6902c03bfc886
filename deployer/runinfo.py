"""Who is running, which run this is, and which Git commit of the spec it deploys."""

from __future__ import annotations

import getpass
import os
import secrets
import socket
import time
from collections.abc import Mapping
from pathlib import Path

CI_JOB_VARIABLES = ("CI_JOB_URL", "GITHUB_RUN_ID", "CI_JOB_ID", "BUILD_URL", "BUILD_ID")


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def holder(environ: Mapping[str, str]) -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    who = f"{user}@{socket.gethostname()}"
    job = next((f"{v}={environ[v]}" for v in CI_JOB_VARIABLES if environ.get(v)), "")
    return f"{who} pid {os.getpid()}" + (f" ({job})" if job else "")


def spec_commit(path: Path) -> str:
    """The short commit of the spec's Git checkout, '+dirty' when it has uncommitted changes."""
    try:
        import git

        repo = git.Repo(path, search_parent_directories=True)
        sha = repo.head.commit.hexsha[:12]
        return sha + ("+dirty" if repo.is_dirty(untracked_files=False) else "")
    except Exception:  # not a git checkout, no commits yet, git missing: the run still proceeds
        return "unknown"
