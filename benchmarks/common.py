"""What every part of the benchmark shares: paths, tool and operation names, the log line."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
BUILD = ROOT / "tools" / "build"
DEPLOYER = "deployer"
HELMFILE = "helmfile"
TOOLS = (DEPLOYER, HELMFILE)
ENV = "dev"
CONCURRENCY = "4"
OBSERVED = re.compile(r"observed (\d+) helm release\(s\) in (\d+) API request\(s\)")
KUBE_VERSION = re.compile(r"Kubernetes (v\d+\.\d+\.\d+\S*)")
BENCH_NS = re.compile(r"^b[dh]\d+r\d+-team-[a-d]$")

# Operation -> (title, which helmfile operation it is compared with when helm-diff is missing).
OPERATIONS: dict[str, str] = {
    "version": "`--version` start-up",
    "template": "template",
    "diff-nochange": "diff, nothing changed",
    "diff-changed": "diff, one release changed",
    "diff-cold": "diff, nothing changed, empty deployer cache",
    "apply-empty": "apply from empty",
    "apply-nochange": "apply, nothing changed",
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
