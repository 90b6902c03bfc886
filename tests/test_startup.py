"""`deployer --version` and `--help` import nothing heavy (helm edge, Kubernetes, git, pydantic)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("pydantic", "yaml", "git", "lightkube", "rich", "httpx", "asyncio", "deployer.model")


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_start_up_imports_nothing_heavy(flag: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "deployer", flag],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert not {m for m in imported if m.split(".")[0] in HEAVY or m in HEAVY}
    assert "deployer" in proc.stdout
