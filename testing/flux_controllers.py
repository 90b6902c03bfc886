"""A real Flux for the cluster tests: source-controller and helm-controller (built by tools/build)
run against the test cluster as local processes, watching one namespace, plus the loopback Git
server they clone from. Independent of pytest."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from testing import sandbox, tools
from testing.gitserve import GitServer
from testing.ports import free_port

CONTROLLERS = ("source-controller", "helm-controller")
READY_TIMEOUT = 180.0  # a deadline for a loaded machine, not a speed check


def install_crds(kubeconfig: Path) -> None:
    """Both controllers' CRDs, server-side (idempotent; cluster-wide, shared by every test)."""
    for component in CONTROLLERS:
        crds = tools.tool_dir(component) / "crds"
        sandbox.kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(crds))
        sandbox.kubectl(kubeconfig, "wait", "--for=condition=Established", "--timeout=60s", "-f", str(crds))


@dataclass
class Flux:
    kubeconfig: Path
    namespace: str  # where the controllers look for Flux objects (and only there)
    workdir: Path
    git: GitServer
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def log(self, component: str) -> str:
        return (self.workdir / f"{component}.log").read_text(errors="replace")

    def delete_objects(self) -> None:
        """Delete every Flux object of the namespace while the controllers still run: they hold
        finalizers that only they remove, and a namespace holding them never finishes deleting."""
        kinds = "helmrelease,helmchart,gitrepository,helmrepository"
        sandbox.kubectl(
            self.kubeconfig, "delete", kinds, "--all", "-n", self.namespace, "--timeout=90s", check=False
        )

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.git.stop()


def sandbox_controllers(kubeconfig: Path) -> list[str]:
    """The controllers `tools/sandbox up --flux` runs for the sandbox of `kubeconfig` (they watch
    every namespace, so they would reconcile the tests' HelmReleases too)."""
    running = []
    for component in CONTROLLERS:
        try:
            pid = int((kubeconfig.parent / f"{component}.pid").read_text())
        except (OSError, ValueError):
            continue
        if Path(f"/proc/{pid}").exists():
            running.append(component)
    return running


def start(kubeconfig: Path, namespace: str, workdir: Path) -> Flux:
    """Start the Git server and both controllers; return once both report healthy."""
    if running := sandbox_controllers(kubeconfig):
        raise sandbox.SandboxError(
            f"the sandbox runs its own {' and '.join(running)} (tools/sandbox up --flux), which would "
            f"race the tests' controllers: stop them with tools/sandbox down --dir {kubeconfig.parent}"
        )
    install_crds(kubeconfig)
    (workdir / "git").mkdir(parents=True, exist_ok=True)
    flux = Flux(kubeconfig, namespace, workdir, GitServer(workdir / "git").start())
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "RUNTIME_NAMESPACE": namespace}
    storage = free_port()
    (workdir / "artifacts").mkdir(exist_ok=True)
    flags = {
        "source-controller": [
            f"--storage-path={workdir / 'artifacts'}",
            f"--storage-addr=127.0.0.1:{storage}",
            f"--storage-adv-addr=127.0.0.1:{storage}",
        ],
        # Without it a release whose dependency is not Ready yet is looked at again after 30 s.
        "helm-controller": ["--requeue-dependency=2s"],
    }
    health: dict[str, str] = {}
    try:
        for component in CONTROLLERS:
            health_port = free_port()
            health[component] = f"http://127.0.0.1:{health_port}/readyz"
            argv = [
                str(tools.tool_dir(component) / component),
                "--watch-all-namespaces=false",
                f"--metrics-addr=127.0.0.1:{free_port()}",
                f"--health-addr=127.0.0.1:{health_port}",
                "--log-encoding=console",
                *flags[component],
            ]
            with (workdir / f"{component}.log").open("wb") as log:
                flux.procs[component] = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        _wait_healthy(flux, health)
    except BaseException:
        flux.stop()
        raise
    return flux


def _wait_healthy(flux: Flux, health: dict[str, str]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    for component, url in health.items():
        while True:
            if flux.procs[component].poll() is not None:
                raise sandbox.SandboxError(f"{component} exited:\n{sandbox.tail(flux.log(component))}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise sandbox.SandboxError(f"{component} not healthy after {READY_TIMEOUT:.0f}s")
            time.sleep(0.3)
