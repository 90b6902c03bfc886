"""Who is running, which run this is, and which Git commit of the spec it deploys."""

from __future__ import annotations

import getpass
import os
import secrets
import socket
import subprocess
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
    """The short commit of the spec's Git checkout, '+dirty' when it has uncommitted changes.

    Two `git` processes (~10 ms), not GitPython: importing it costs ~0.3-1 s, paid by every diff
    that saves a plan and every apply."""
    try:
        sha = _git(path, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
        dirty = _git(path, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):  # not a checkout, no commits yet, no git
        return "unknown"
    return sha.strip()[:12] + ("+dirty" if dirty.strip() else "")


def _git(path: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(path), *args], capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout
