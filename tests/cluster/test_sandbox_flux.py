"""`tools/sandbox up --flux` and `git-serve` give a working pull-mode setup, and `down` leaves
nothing running: a second, one-node sandbox in a temporary directory (its own control plane, so the
controllers watching every namespace never meet the other tests' objects) serves a repository
that its source-controller fetches."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing import sandbox

READY_TIMEOUT = "180s"  # a deadline for a loaded machine, not a speed check


def tools_sandbox(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(sandbox.SANDBOX), *args], capture_output=True, text=True, check=False, timeout=600
    )
    assert result.returncode == 0, f"tools/sandbox {' '.join(args)} failed:\n{result.stderr}"
    return result


def processes_naming(directory: Path) -> list[str]:
    """The command lines of live processes that name `directory` (every process the sandbox starts
    does: see is_ours in tools/sandbox)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(directory) in cmdline and state != "Z":
            found.append(cmdline)
    return found


@pytest.fixture
def flux_sandbox(kubeconfig: Path, tmp_path: Path) -> Iterator[Path]:
    """A one-node sandbox with Flux in its own directory; its DIR. Stopped afterwards, always."""
    if not (kubeconfig.parent / "state.json").exists():
        pytest.skip(f"{sandbox.KUBECONFIG_ENV} points at a cluster that tools/sandbox did not start")
    directory = tmp_path / "sandbox"
    try:
        up = tools_sandbox("up", "--flux", "--nodes", "1", "--dir", str(directory))
        assert sandbox.parse_kubeconfig_line(up.stdout) == directory / "kubeconfig"
        yield directory
    finally:
        subprocess.run(
            [str(sandbox.SANDBOX), "down", "--dir", str(directory)], capture_output=True, check=False
        )


def test_up_flux_fetches_from_git_serve_and_down_stops_every_process(
    flux_sandbox: Path, tmp_path: Path
) -> None:
    directory = flux_sandbox
    own = directory / "kubeconfig"
    repo = tmp_path / "tiny"
    repo.mkdir()
    (repo / "README").write_text("pulled by source-controller\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], cwd=repo, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()

    url = tools_sandbox("git-serve", str(repo), "--dir", str(directory)).stdout.splitlines()[-1]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/tiny.git")
    status = tools_sandbox("status", "--dir", str(directory)).stdout
    assert "flux: source-controller and helm-controller running (namespace flux-system)" in status
    assert "(repositories: tiny.git)" in status

    source = tmp_path / "gitrepository.yaml"
    source.write_text(
        json.dumps(
            {
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "metadata": {"name": "tiny", "namespace": "flux-system"},
                "spec": {"interval": "1m", "url": url, "ref": {"branch": "main"}},
            }
        )
    )
    sandbox.kubectl(own, "apply", "-f", str(source))
    ready = sandbox.kubectl(
        own,
        *("wait", "--for=condition=Ready", "gitrepository/tiny", "-n", "flux-system"),
        f"--timeout={READY_TIMEOUT}",
        check=False,
    )
    assert ready.returncode == 0, ready.stderr + sandbox.tail(
        (directory / "logs" / "source-controller.log").read_text()
    )
    fetched = json.loads(
        sandbox.kubectl(own, "get", "gitrepository/tiny", "-n", "flux-system", "-o", "json").stdout
    )
    assert fetched["status"]["artifact"]["revision"] == f"main@sha1:{head}"

    # The API server goes away and comes back (the fault tests' stop/start-apiserver): the Flux
    # controllers are restarted with the other API clients, and fetch again.
    pids = {c: (directory / f"{c}.pid").read_text() for c in ("source-controller", "helm-controller")}
    tools_sandbox("stop-apiserver", "--dir", str(directory))
    tools_sandbox("start-apiserver", "--dir", str(directory))
    assert all((directory / f"{c}.pid").read_text() != pid for c, pid in pids.items())
    again = tmp_path / "again.yaml"
    again.write_text(source.read_text().replace('"name": "tiny"', '"name": "tiny-again"'))
    sandbox.kubectl(own, "apply", "-f", str(again))
    ready = sandbox.kubectl(
        own,
        *("wait", "--for=condition=Ready", "gitrepository/tiny-again", "-n", "flux-system"),
        f"--timeout={READY_TIMEOUT}",
        check=False,
    )
    assert ready.returncode == 0, ready.stderr
    sandbox.kubectl(own, "delete", "-f", str(again), "--timeout=60s")

    # The delete waits for source-controller to remove its finalizer: the controllers still answer.
    sandbox.kubectl(own, "delete", "-f", str(source), "--timeout=60s")

    running = " ".join(processes_naming(directory))
    for started in (
        "kube-apiserver",
        "flux/bin/source-controller",
        "flux/bin/helm-controller",
        "gitserve.py",
    ):
        assert started in running
    tools_sandbox("down", "--dir", str(directory))
    assert processes_naming(directory) == []
