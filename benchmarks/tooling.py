"""The tools measured (deployer, helmfile, helm, helm-diff), their environments, and the cluster
(lightkube, as deployer itself uses): namespaces and Helm release Secrets."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from common import BENCH_NS, BUILD, DEPLOYER, HELMFILE, ROOT

# ---------------------------------------------------------------------------------------------------
# Tools


@dataclass
class Tools:
    helm: Path
    helmfile: Path
    deployer: Path
    helm_plugins: Path | None  # a HELM_PLUGINS directory holding helm-diff, if it could be built
    helm_diff_problem: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    deployer_src: Path | None = None  # a snapshot of deployer/ taken at start (PYTHONPATH)


def _build(component: str) -> tuple[bool, str]:
    proc = subprocess.run([str(BUILD), component], capture_output=True, text=True, check=False)
    return proc.returncode == 0, proc.stderr.strip()


def _tool_dir(component: str) -> Path:
    out = subprocess.run([str(BUILD), "--path", component], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def snapshot_deployer(work: Path) -> tuple[Path, str]:
    """Copy deployer/ as it is now, so that edits made during a run do not change what is measured.

    Returns the PYTHONPATH directory and a description of the code (commit, local changes)."""
    src = work / "deployer-src"
    shutil.copytree(ROOT / "deployer", src / "deployer", ignore=shutil.ignore_patterns("__pycache__"))

    def git(*argv: str) -> str:
        proc = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(ROOT), *argv],
            capture_output=True,
            text=True,
            check=False,
        )
        return proc.stdout.strip() if proc.returncode == 0 else ""

    commit = git("log", "-1", "--format=%h %s")
    dirty = git("status", "--porcelain", "--", "deployer")
    where = f"commit {commit}" if commit else "no git commit found"
    return src, where + (" plus uncommitted changes in deployer/" if dirty else "")


def build_problem(stderr: str) -> str:
    """One line saying why a Go build failed, without the registry's address."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and "go: downloading" not in line]
    refused = re.search(r"(\S+@v\S+?): reading \S+: (\d{3} [A-Za-z]+)", stderr)
    if refused:
        why = re.search(r"server response: (.*)", stderr)
        detail = f": {why.group(1).strip()}" if why else ""
        return f"the Go module proxy refuses {refused.group(1)} ({refused.group(2).strip()}{detail})"
    return re.sub(r"https?://\S+", "<registry>", lines[-1] if lines else "failed")


def locate_tools(build_helm_diff: bool) -> Tools:
    for component in ("helm3", "helmfile"):
        ok, err = _build(component)
        if not ok:
            sys.exit(f"benchmarks: tools/build {component} failed:\n{err}")
    helm = _tool_dir("helm3") / "helm"
    helmfile = _tool_dir("helmfile") / "helmfile"
    deployer = Path(sys.executable).parent / "deployer"
    if not deployer.exists():
        sys.exit(f"benchmarks: {deployer} not found; run from the project's .venv (tools/setup)")
    plugins_dir = _tool_dir("helm-diff")
    problem = ""
    if build_helm_diff and not (plugins_dir / "diff" / "bin" / "diff").exists():
        ok, err = _build("helm-diff")
        if not ok:
            problem = build_problem(err)
    plugins = plugins_dir if (plugins_dir / "diff" / "bin" / "diff").exists() else None
    if plugins is None:
        problem = problem or "helm-diff is not built (tools/build helm-diff)"
    tools = Tools(helm, helmfile, deployer, plugins, problem)
    env = tool_env(tools, HELMFILE, Path(tempfile.gettempdir()), "none", "")

    def version(argv: list[str], environ: dict[str, str] | None = None) -> str:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=environ)
        return (proc.stdout.strip() or proc.stderr.strip()).splitlines()[0] if proc.returncode == 0 else "?"

    tools.versions = {
        "deployer": version([str(deployer), "--version"]),
        "helm": version([str(helm), "version", "--short"]),
        "helmfile": version([str(helmfile), "--version"], env),
        "helm-diff": version([str(helm), "diff", "version"], env) if plugins else "not available",
    }
    return tools


def tool_env(tools: Tools, tool: str, work: Path, prefix: str, kubeconfig: str) -> dict[str, str]:
    # PYTHON* too: e.g. PYTHONDONTWRITEBYTECODE would make every deployer run recompile its modules.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DEPLOYER_", "HELM_", "HELMFILE_", "PYTHON")) and k != "KUBECONFIG"
    }
    helm_home = work / "helm-home" / tool
    env.update(
        {
            "PATH": f"{tools.helm.parent}{os.pathsep}{env.get('PATH', '')}",
            "KUBECONFIG": kubeconfig,
            "NO_COLOR": "1",
            "BENCH_NS": prefix,
            "HELM_CACHE_HOME": str(helm_home / "cache"),
            "HELM_CONFIG_HOME": str(helm_home / "config"),
            "HELM_DATA_HOME": str(helm_home / "data"),
        }
    )
    if tool == DEPLOYER:
        if tools.deployer_src:
            env["PYTHONPATH"] = str(tools.deployer_src)
        env["DEPLOYER_HELM"] = str(tools.helm)
        env["DEPLOYER_CACHE_DIR"] = str(work / "deployer-cache")
    else:
        env["HELMFILE_UPGRADE_NOTICE_DISABLED"] = "1"  # no network look-up for a newer release
        env["HELMFILE_CACHE_HOME"] = str(work / "helmfile-cache")
        if tools.helm_plugins:
            env["HELM_PLUGINS"] = str(tools.helm_plugins)
    return env


# ---------------------------------------------------------------------------------------------------
# The cluster (lightkube, as deployer itself uses): namespaces and Helm release Secrets


class Cluster:
    def __init__(self, kubeconfig: str) -> None:
        from lightkube import Client, KubeConfig

        self.client = Client(config=KubeConfig.from_file(kubeconfig))

    def bench_namespaces(self) -> list[str]:
        from lightkube.resources.core_v1 import Namespace

        names = [str(ns.metadata.name) for ns in self.client.list(Namespace) if ns.metadata]
        return [name for name in names if BENCH_NS.match(name)]

    def delete_namespaces(self, prefixes: Iterable[str], timeout: float = 900.0) -> None:
        from lightkube.resources.core_v1 import Namespace

        wanted = tuple(f"{p}-" for p in prefixes)
        doomed = [n for n in self.bench_namespaces() if n.startswith(wanted)]
        for name in doomed:
            self.client.delete(Namespace, name)
        deadline = time.monotonic() + timeout
        while doomed and time.monotonic() < deadline:
            left = set(self.bench_namespaces())
            doomed = [n for n in doomed if n in left]
            if doomed:
                time.sleep(1.0)
        if doomed:
            raise SystemExit(f"benchmarks: namespaces not deleted after {timeout:.0f}s: {doomed}")

    def node_count(self) -> int:
        from lightkube.resources.core_v1 import Node

        return len(list(self.client.list(Node)))

    def releases(self, prefix: str) -> dict[str, tuple[int, str]]:
        """namespace/name -> (highest revision, its status) of the Helm releases under `prefix`."""
        from lightkube.resources.core_v1 import Secret

        out: dict[str, tuple[int, str]] = {}
        for secret in self.client.list(Secret, namespace="*", labels={"owner": "helm"}):
            meta = secret.metadata
            ns = str(meta.namespace if meta else "")
            if not meta or not ns.startswith(f"{prefix}-"):
                continue
            labels = meta.labels or {}
            key = f"{ns}/{labels.get('name')}"
            revision = int(labels.get("version", "0"))
            if revision >= out.get(key, (0, ""))[0]:
                out[key] = (revision, str(labels.get("status")))
        return out
