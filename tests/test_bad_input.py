"""Bad input: every case gets the exact message with file:line:column, exit code 1, no traceback,
and nothing created or changed, in the project or in deployer's cache."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

from testing.cli import run, tree_state

CASES = Path(__file__).parent / "data" / "bad"
UNSET = ("PROD_CONTEXT", "DEPLOY_NAMESPACE", "API_KEY", "PROD_KUBE_CONTEXT")


def test_there_are_at_least_thirty_cases() -> None:
    assert len(list(CASES.iterdir())) >= 30


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir()))
def test_bad_input_is_reported_precisely_and_changes_nothing(case: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(CASES / case, project)
    expected = (project / "expected").read_text()
    argv = shlex.split((project / "cmd").read_text())
    before = tree_state(project)
    cache = tmp_path / "cache"

    result = run(argv, project, {"DEPLOYER_CACHE_DIR": str(cache), **{v: None for v in UNSET}})

    assert result.code == 1
    assert "Traceback" not in result.err
    assert result.err == expected
    assert result.out == ""
    assert tree_state(project) == before
    assert not cache.exists()
