"""Chart repositories: added to deployer's private helm config, refreshed only when stale.

Credentials come from the environment (DEPLOYER_REPO_<NAME>_USERNAME / _PASSWORD, or the variables
a repository names) and reach helm on stdin, never on argv.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from deployer.errors import UsageError
from deployer.helm import Helm

DEFAULT_TTL = 6 * 3600.0  # seconds an index stays fresh


def credentials(repo: Any, environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    stem = "DEPLOYER_REPO_" + re.sub(r"[^A-Z0-9]", "_", repo.name.upper())
    user_var = repo.username_env or f"{stem}_USERNAME"
    pass_var = repo.password_env or f"{stem}_PASSWORD"
    user, password = environ.get(user_var), environ.get(pass_var)
    if repo.username_env and user is None:
        raise UsageError(
            f"repository '{repo.name}' reads its username from {user_var}, which is not set",
            hint=f"export {user_var}=...",
        )
    if repo.password_env and password is None:
        raise UsageError(
            f"repository '{repo.name}' reads its password from {pass_var}, which is not set",
            hint=f"export {pass_var}=...",
        )
    return user, password


@dataclass
class RepoManager:
    """Adds each repository at most once per run, and only when its index is missing or stale."""

    helm: Helm
    environ: Mapping[str, str]
    ttl: float = DEFAULT_TTL
    refresh: bool = False
    log: Callable[[str], None] = lambda _msg: None
    _done: dict[str, asyncio.Task[str]] = field(default_factory=dict)

    def index_path(self, name: str) -> Path:
        return self.helm.home / "repository" / f"{name}-index.yaml"

    def _configured_url(self, name: str) -> str | None:
        config = self.helm.home / "repositories.yaml"
        if not config.exists():
            return None
        data = yaml.safe_load(config.read_text()) or {}
        for entry in data.get("repositories") or []:
            if entry.get("name") == name:
                return str(entry.get("url"))
        return None

    def is_fresh(self, repo: Any) -> bool:
        index = self.index_path(repo.name)
        return (
            not self.refresh
            and self._configured_url(repo.name) == repo.url.rstrip("/")
            and index.exists()
            and time.time() - index.stat().st_mtime < self.ttl
        )

    async def ensure(self, repo: Any, *, force: bool = False) -> str:
        """'added', 'updated' or 'fresh' (nothing done). OCI registries need only a login, if any.

        `force` refreshes the index even when it looks fresh (at most once per run).
        """
        key = f"{repo.name}+force" if force else repo.name
        if key not in self._done:
            self._done[key] = asyncio.ensure_future(self._ensure(repo, force))
        return await self._done[key]

    async def _ensure(self, repo: Any, force: bool) -> str:
        user, password = credentials(repo, self.environ)
        if repo.url.startswith("oci://"):
            if user is None:
                return "fresh"
            host = urlparse(repo.url).netloc
            args = ["registry", "login", host, "--username", user, "--password-stdin"]
            if repo.plain_http:
                args.append("--insecure")
            await self.helm.run(args, stdin=(password or "").encode())
            return "logged-in"
        if not force and self.is_fresh(repo):
            return "fresh"
        existed = self._configured_url(repo.name) is not None
        self.log(f"repository {repo.name}: {'refreshing' if existed else 'adding'} {repo.url}")
        args = ["repo", "add", repo.name, repo.url.rstrip("/"), "--force-update"]
        stdin = None
        if user is not None:
            args += ["--username", user, "--password-stdin"]
            stdin = (password or "").encode()
        await self.helm.run(args, stdin=stdin)
        self.index_path(repo.name).touch()  # helm keeps the old mtime when the index is unchanged
        return "updated" if existed else "added"
