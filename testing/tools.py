"""Where the pinned external binaries live (built by tools/build, cached outside the repo)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def tool_dir(component: str) -> Path:
    """The cache directory of one component of tools/versions.env, building it if missing."""
    build = ROOT / "tools" / "build"
    subprocess.run([str(build), component], check=True)
    out = subprocess.run([str(build), "--path", component], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


def helm_binary(major: int) -> Path:
    return tool_dir(f"helm{major}") / "helm"


def sops_binary() -> Path:
    return tool_dir("sops") / "sops"


def age_keygen_binary() -> Path:
    return tool_dir("age") / "age-keygen"
