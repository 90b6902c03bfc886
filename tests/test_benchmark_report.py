"""benchmarks/run.py --report-from: RESULTS.md rewritten from the committed results, with a run made
apart (N=1000) included once, never twice."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def test_the_report_counts_an_included_runs_floor_once(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    argv = [sys.executable, str(BENCH / "run.py"), "--report-from", str(BENCH / "results.json")]
    done = subprocess.run([*argv, "--output", str(out)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    apart = json.loads((BENCH / "results-n1000.json").read_text())["records"]
    measured = sum(r["cpu"] for r in apart if r["op"] == "floor-template" and r["n"] == 1000)
    [row] = [
        line
        for line in out.read_text().splitlines()
        if line.startswith("| 1000 | ") and "ms per release)" in line
    ]
    summed = float(re.match(r"\| 1000 \| ([\d.]+) s", row)[1])  # type: ignore[index]
    assert abs(summed - measured) < 0.01, (summed, measured)
