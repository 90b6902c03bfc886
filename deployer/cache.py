"""Where deployer keeps pulled charts, repository indexes and its private helm configuration."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def cache_dir(environ: Mapping[str, str]) -> Path:
    if environ.get("DEPLOYER_CACHE_DIR"):
        return Path(environ["DEPLOYER_CACHE_DIR"])
    base = Path(environ["XDG_CACHE_HOME"]) if environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "deployer"
