"""A run cancelled while a release hook runs (both helm majors): the hook and what it started get the
signal and are waited for (never orphaned), no helm and no further hook starts (the cleanup hook
included, reported as skipped), the Lease goes with the run, and the exit code is 128 + the signal.
For apply (its JSON report), destroy and rollback (hookrun.run_changes)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testing.cluster_run import Deployer
from testing.example import copy_example
from testing.processes import alive

# A hook that starts a child and waits: on the signal it records which one came and exits 3; its
# child (in its process group) must end too.
SLOW_HOOK = """\
import os, signal, subprocess, sys, time
child = subprocess.Popen(["sleep", "300"])
def stop(signum, _frame):
    with open("hook.signal", "w") as f:
        f.write(signal.Signals(signum).name)
    sys.exit(3)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
with open("hook.pids", "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
time.sleep(300)
"""
CLEANUP = "open('cleanup.ran', 'w').write('yes')\n"


@pytest.fixture
def deployer(tmp_path: Path, namespace: str, helm: Path, kubeconfig: Path, cache: Path) -> Deployer:
    project = copy_example(tmp_path / "gitops", namespace=namespace, env_suffix=f"-{namespace[-8:]}")
    spec = project / "deployer.yaml"  # the example's own hook out: each test declares its own
    spec.write_text(re.sub(r"^    hooks:\n(^      .*\n)+", "", spec.read_text(), count=1, flags=re.M))
    (project / "slow.py").write_text(SLOW_HOOK)
    (project / "cleanup.py").write_text(CLEANUP)
    return Deployer(project, helm, kubeconfig, cache)


def with_hooks(deployer: Deployer, event: str) -> str:
    """api gets a slow `event` hook, the run a cleanup hook; returns the spec without them."""
    spec = deployer.project / "deployer.yaml"
    plain = spec.read_text()
    slow = json.dumps([sys.executable, "slow.py"])
    cleanup = json.dumps([sys.executable, "cleanup.py"])
    text = plain.replace(
        "  - name: api\n",
        f"  - name: api\n    hooks:\n      - events: [{event}]\n        command: {slow}\n",
        1,
    )
    text = text.replace(
        "  sensitive: [secret.apiKey]\n",
        f"  sensitive: [secret.apiKey]\n  hooks:\n    - events: [cleanup]\n      command: {cleanup}\n",
        1,
    )
    assert text.count("slow.py") == 1 and text.count("cleanup.py") == 1
    spec.write_text(text)
    return plain


def hook_started(deployer: Deployer, proc: subprocess.Popen[str]) -> list[int]:
    pids = deployer.project / "hook.pids"
    deadline = time.monotonic() + 180
    while not pids.exists() or len(pids.read_text().split()) != 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the hook never started"
        time.sleep(0.2)
    return [int(p) for p in pids.read_text().split()]


def assert_hook_stopped(deployer: Deployer, pids: list[int], sig: signal.Signals) -> None:
    assert (deployer.project / "hook.signal").read_text() == sig.name  # the signal was passed on
    deadline = time.monotonic() + 30  # the hook's child is ended with its group (reaped by init)
    while [p for p in pids if alive(p)]:
        assert time.monotonic() < deadline, "the hook or its child outlived deployer"
        time.sleep(0.2)
    assert not (deployer.project / "cleanup.ran").exists()  # no hook starts after the signal


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_apply_cancelled_during_a_presync_hook_starts_no_helm_and_reports_it(
    deployer: Deployer, namespace: str, sig: signal.Signals
) -> None:
    e = f"dev-{namespace[-8:]}"
    plain = with_hooks(deployer, "presync")
    proc = deployer.subprocess("apply", "-e", e, "--output", "json")
    pids = hook_started(deployer, proc)

    proc.send_signal(sig)  # deployer only, as a CI runner does
    out, err = proc.communicate(timeout=120)

    assert proc.returncode == 128 + sig, err
    assert err.splitlines()[-1] == f"deployer: cancelled by {sig.name}"
    assert "Traceback" not in err
    assert_hook_stopped(deployer, pids, sig)
    report = json.loads(out)
    assert report["cancelledBy"] == sig.name
    assert report["ok"] is False
    releases = {r["key"]: r for r in report["releases"]}
    api, worker = releases[f"{namespace}/api"], releases[f"{namespace}/worker"]
    assert api["status"] == "failed"
    assert api["detail"].startswith(f"cancelled by {sig.name}: presync hook `"), api
    assert f"{namespace}/api is not installed: the next `deployer apply` installs it" in api["detail"]
    assert worker["status"] == "skipped"
    assert worker["detail"] == f"not started: {namespace}/api failed"  # it needs api
    assert report["runHooks"] == [
        {
            "event": "cleanup",
            "status": "skipped",
            "detail": f"not started: cancelled by {sig.name}",
            "seconds": 0.0,
        }
    ]
    assert deployer.history("api", namespace) == []  # helm never started for api

    # The Lease went with the run: the next apply does not wait for it, and converges.
    (deployer.project / "deployer.yaml").write_text(plain)
    deployer.applies_at_once_and_converges(e)


def test_destroy_cancelled_during_a_preuninstall_hook_uninstalls_nothing_more(
    deployer: Deployer, namespace: str
) -> None:
    e = f"dev-{namespace[-8:]}"
    assert deployer("apply", "-e", e).code == 0
    plain = with_hooks(deployer, "preuninstall")
    proc = deployer.subprocess("destroy", "-e", e, "--yes")
    pids = hook_started(deployer, proc)  # worker is uninstalled first (it needs api); api's hook runs

    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)

    assert proc.returncode == 143, err
    assert err.splitlines()[-1] == "deployer: cancelled by SIGTERM"
    assert_hook_stopped(deployer, pids, signal.SIGTERM)
    assert f"{namespace}/worker\tuninstalled\n" in out
    assert f"{namespace}/api\tFAILED: cancelled by SIGTERM: preuninstall hook `" in out, out
    assert f"{namespace}/platform-config\tskipped: not started: cancelled by SIGTERM\n" in out
    assert "cleanup\thook skipped: not started: cancelled by SIGTERM\n" in out
    assert deployer.revision("api", namespace) == 1  # api and platform-config stay installed
    assert deployer.revision("platform-config", namespace) == 1

    (deployer.project / "deployer.yaml").write_text(plain)
    again = deployer("destroy", "-e", e, "--yes", "--lock-timeout", "5")
    assert again.code == 0, again.err
    assert deployer.history("api", namespace) == []
