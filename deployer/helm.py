"""The only place that starts helm.

We call the helm binary directly (argv, no shell) with a timeout on our side. Secrets never go on
argv: passwords travel on stdin, values in 0600 files. Helm's repository and registry configuration
live in deployer's cache, so a run never edits the user's own helm setup.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deployer import cancel
from deployer.errors import HelmError, HelmNotFound

log = logging.getLogger("deployer.helm")
MIN_HELM = (3, 17, 0)
DEFAULT_TIMEOUT = 600.0


@dataclass(frozen=True)
class Helm:
    path: str
    version: tuple[int, int, int]
    home: Path  # deployer's private helm config/cache root

    @property
    def major(self) -> int:
        return self.version[0]

    @property
    def version_text(self) -> str:
        return "v" + ".".join(map(str, self.version))

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            HELM_REPOSITORY_CONFIG=str(self.home / "repositories.yaml"),
            HELM_REPOSITORY_CACHE=str(self.home / "repository"),
            HELM_REGISTRY_CONFIG=str(self.home / "registry" / "config.json"),
            HELM_CACHE_HOME=str(self.home / "cache"),
        )
        return env

    def wait_flag(self) -> str:
        # Helm 4's plain --wait means "hookOnly"; watcher waits for resources like Helm 3's --wait.
        return "--wait" if self.major < 4 else "--wait=watcher"

    async def uninstall(
        self,
        name: str,
        namespace: str,
        kube_flags: Sequence[str],
        *,
        timeout: int = 300,
        extra: Sequence[str] = (),
    ) -> None:
        await self._waited(["uninstall", name, *extra], namespace, kube_flags, timeout)

    async def rollback(
        self,
        name: str,
        namespace: str,
        revision: int,
        kube_flags: Sequence[str],
        *,
        timeout: int = 300,
        extra: Sequence[str] = (),
    ) -> None:
        await self._waited(["rollback", name, str(revision), *extra], namespace, kube_flags, timeout)

    async def test(
        self, name: str, namespace: str, kube_flags: Sequence[str], *, timeout: int, limit: float, logs: bool
    ) -> str:
        """`helm test`: run the release's test hooks; with `logs`, helm prints the test Pods' logs
        (helm 3 asks for the logs of every test hook as a Pod, and fails when one is not a Pod)."""
        args = ["test", name, "--namespace", namespace, "--timeout", f"{timeout}s", *kube_flags]
        if logs:
            args.append("--logs")
        return await self.run(args, release=f"{namespace}/{name}", timeout=limit)

    async def _waited(self, verb: list[str], namespace: str, kube_flags: Sequence[str], timeout: int) -> None:
        args = [*verb, "--namespace", namespace, self.wait_flag(), "--timeout", f"{timeout}s", *kube_flags]
        await self.run(args, release=f"{namespace}/{verb[1]}", timeout=timeout + 30)

    async def run(
        self,
        args: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        release: str = "",
        cwd: Path | None = None,
    ) -> str:
        if why := cancel.reason():  # after a signal no helm starts, whatever asked for it
            raise HelmError(
                command=["helm", *args], returncode=1, stderr=f"not started: {why}", release=release
            )
        command = [self.path, *args]
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env(),
            cwd=cwd,
        )
        # helm stays in deployer's process group (a CI system killing the group kills helm too);
        # a signal to deployer is passed on to it (deployer/cancel.py).
        cancel.track_process(proc)
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
        except TimeoutError:
            await _kill(proc)
            raise HelmError(
                command=["helm", *args],
                returncode=-9,
                stderr=f"timed out after {timeout:.0f}s",
                release=release,
            ) from None
        except asyncio.CancelledError:
            await _kill(proc)
            raise
        finally:
            cancel.untrack_process(proc)
        log.debug("helm %s -> exit %s in %.2fs", " ".join(args), proc.returncode, time.monotonic() - started)
        if proc.returncode != 0:
            raise HelmError(
                command=["helm", *args],
                returncode=proc.returncode or 1,
                stderr=err.decode(errors="replace"),
                release=release,
                stdout=out.decode(errors="replace"),
            )
        return out.decode()


async def _kill(proc: asyncio.subprocess.Process) -> None:
    """End helm. Not proc.kill(): Popen polls first, which can reap the child under asyncio's child
    watcher ("Unknown child process pid")."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()


def locate(override: str | None, environ: Mapping[str, str], home: Path) -> Helm:
    """Find helm (--helm, then DEPLOYER_HELM, then PATH) and check its version."""
    if override:
        candidate, where = override, f"--helm {override}"
    elif environ.get("DEPLOYER_HELM"):
        candidate, where = environ["DEPLOYER_HELM"], f"DEPLOYER_HELM={environ['DEPLOYER_HELM']}"
    else:
        candidate, where = "helm", f"PATH ({environ.get('PATH', '')})"
    path = shutil.which(candidate, path=environ.get("PATH"))
    if path is None:
        raise HelmNotFound(
            f"helm not found (looked in {where})",
            hint=f"install helm >= {_fmt(MIN_HELM)} (Helm 3 or 4), or point --helm / DEPLOYER_HELM at it",
        )
    out = _version_output(path, home)
    version = parse_version(out)
    if version is None or version < MIN_HELM:
        raise HelmNotFound(
            f"{path} reports version '{out.strip() or '?'}'; deployer needs helm >= {_fmt(MIN_HELM)}",
            hint=f"install a newer helm (found via {where}), or point --helm / DEPLOYER_HELM at one",
        )
    home.mkdir(parents=True, exist_ok=True)
    return Helm(path=path, version=version, home=home)


def _version_output(path: str, home: Path) -> str:
    """`helm version` output, remembered per binary (path, size, mtime): it costs ~80 ms a run."""
    stat = os.stat(path)
    key = f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}"
    memo = home / "helm-versions.json"
    try:
        known: dict[str, str] = json.loads(memo.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        return known[key]
    try:
        out = subprocess.run(
            [path, "version", "--template", "{{.Version}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise HelmNotFound(
            f"could not run {path} version: {exc}", hint="check that it is a working helm binary"
        ) from None
    if parse_version(out) is not None:
        home.mkdir(parents=True, exist_ok=True)
        partial = memo.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps({**known, key: out}))
        os.replace(partial, memo)
    return out


def parse_version(text: str) -> tuple[int, int, int] | None:
    match = re.search(r"v?(\d+)\.(\d+)\.(\d+)", text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def _fmt(version: tuple[int, int, int]) -> str:
    return ".".join(map(str, version))
