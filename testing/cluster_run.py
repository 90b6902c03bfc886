"""Helpers for cluster tests: run deployer against the sandbox, read helm's view of releases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from testing.cli import Result, run

ROOT = Path(__file__).resolve().parent.parent


class Deployer:
    """deployer for one project, one helm binary and one cluster."""

    def __init__(self, project: Path, helm: Path, kubeconfig: Path, cache: Path) -> None:
        self.project, self.helm, self.kubeconfig, self.cache = project, helm, kubeconfig, cache

    def env(self, extra: Mapping[str, str | None] | None = None) -> dict[str, str | None]:
        return {
            "DEPLOYER_HELM": str(self.helm),
            "KUBECONFIG": str(self.kubeconfig),
            "DEPLOYER_CACHE_DIR": str(self.cache),
            "API_KEY": None,
            "PROD_KUBE_CONTEXT": None,
            **(extra or {}),
        }

    def __call__(self, *argv: str, env: Mapping[str, str | None] | None = None) -> Result:
        return run(list(argv), self.project, self.env(env))

    def subprocess(self, *argv: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        full = {k: v for k, v in os.environ.items()}
        for k, v in self.env(env).items():
            if v is None:
                full.pop(k, None)
            else:
                full[k] = v
        return subprocess.Popen(
            [sys.executable, "-m", "deployer", *argv],
            cwd=self.project,
            env=full,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, so a test can kill it with its helm
        )

    def applies_at_once_and_converges(self, env: str) -> None:
        """After a cancelled run: the next apply does not wait for the lock (the Lease went with the
        run) and succeeds, and the plan then converges."""
        again = self("apply", "-e", env, "--lock-timeout", "5")
        assert again.code == 0, again.err
        assert "waiting for the lock" not in again.err
        assert self("diff", "-e", env, "--detailed-exitcode").code == 0

    def helm_cmd(self, *argv: str, check: bool = True) -> str:
        return subprocess.run(
            [str(self.helm), *argv, "--kubeconfig", str(self.kubeconfig)],
            check=check,
            capture_output=True,
            text=True,
        ).stdout

    def history(self, release: str, namespace: str) -> list[dict[str, Any]]:
        out = self.helm_cmd("history", release, "--namespace", namespace, "--output", "json", check=False)
        return json.loads(out) if out.strip() else []

    def revision(self, release: str, namespace: str) -> int:
        history = self.history(release, namespace)
        return int(history[-1]["revision"]) if history else 0

    def manifest(self, release: str, namespace: str) -> str:
        return self.helm_cmd("get", "manifest", release, "--namespace", namespace)
