"""A smoke of the benchmark harness at N=10 (issue 14 keeps every benchmark out of CI's pass/fail:
this checks only that benchmarks/run.py still runs both tools and reports what it measured, never a
figure's size)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from lightkube import Client, KubeConfig
from lightkube.resources.core_v1 import Namespace

ROOT = Path(__file__).resolve().parents[2]
DURATION = r"\d+(\.\d+)? (ms|s)"


def test_the_harness_measures_both_tools_at_n10_and_cleans_up(kubeconfig: Path) -> None:
    argv = [
        sys.executable,
        str(ROOT / "benchmarks" / "run.py"),
        "--quick",
        "--ops",
        "version,template,diff-nochange",
        "--helmfile-ops",
        "template",
        "--no-floor",
        "--no-helm-diff-build",
        "--kubeconfig",
        str(kubeconfig),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1200, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {
        line.split(" | ")[0].lstrip("| "): line for line in done.stdout.splitlines() if line.startswith("| ")
    }
    template = rows["template vs `helmfile template`"].split(" | ")
    assert template[1] == "10"
    assert re.match(DURATION, template[2]) and re.match(DURATION, template[3]), template  # both tools
    nochange = rows["diff, nothing changed"].split(" | ")
    assert nochange[-1].rstrip(" |") == "1"  # one API request for the observed state
    assert "`deployer --version`" in done.stdout
    client = Client(config=KubeConfig.from_file(kubeconfig))
    left = [str(ns.metadata.name) for ns in client.list(Namespace) if ns.metadata]
    assert not [n for n in left if re.match(r"^b[dh]10r", n)], left  # its releases' namespaces are gone
