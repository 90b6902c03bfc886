"""A read-only verb cancelled by SIGINT/SIGTERM: its helm is ended, its private files removed, and
it exits 128 + the signal with one line (no traceback)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testing.example import copy_example
from testing.processes import alive, descendants

pytestmark = pytest.mark.helm

# `helm template` that takes as long as it is allowed to (a slow chart, a slow repository).
SLOW_TEMPLATE_HELM = """#!/bin/sh
case "$1" in
  template) exec sleep 300 ;;
esac
exec "{real}" "$@"
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_template_cancelled_ends_its_helm_and_removes_its_files(
    tmp_path: Path, helm: Path, cache: Path, sig: signal.Signals
) -> None:
    project = copy_example(tmp_path / "example")
    wrapper = tmp_path / "slow" / "helm"
    wrapper.parent.mkdir()
    wrapper.write_text(SLOW_TEMPLATE_HELM.format(real=helm))
    wrapper.chmod(0o755)
    private = tmp_path / "tmp"
    private.mkdir()
    env = {
        **os.environ,
        "DEPLOYER_HELM": str(wrapper),
        "TMPDIR": str(private),
        "DEPLOYER_CACHE_DIR": str(cache),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "deployer", "template", "-e", "dev"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not (pids := descendants(proc.pid)) or not list(private.glob("deployer-*/*.values.yaml")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "helm template never started"
        time.sleep(0.1)

    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=60)

    assert proc.returncode == 128 + sig
    *progress, last = err.splitlines()
    assert last == f"deployer: cancelled by {sig.name}"
    assert all(line.startswith("[") for line in progress), err  # progress lines only: no traceback
    assert not [pid for pid in pids if alive(pid)], "helm outlived deployer"
    assert not list(private.iterdir()), "private values left on disk"
