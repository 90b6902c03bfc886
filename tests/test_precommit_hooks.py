"""The pre-commit hooks, run by the real pre-commit (`pre-commit try-repo`, which installs this
repository into its own environment as a user's pre-commit would) in a temporary Git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from testing.example import copy_example

ROOT = Path(__file__).resolve().parents[1]


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=T", *args],
        check=True,
        capture_output=True,
    )


def hook_repo(dst: Path) -> Path:
    """This working tree as a committed repository (try-repo would leave out untracked files)."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dst / name)
    git(dst, "init", "-q")
    git(dst, "add", "-A")
    git(dst, "commit", "-qm", "hooks under test")
    return dst


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hook_repo(tmp_path_factory.mktemp("hook-repo"))


def try_repo(project: Path, hooks: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"PRE_COMMIT_HOME": str(home), "NO_COLOR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(hooks), "--all-files", "--color", "never"],
        cwd=project,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )


def test_the_hooks_are_declared_for_a_python_install() -> None:
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"deployer-validate", "deployer-schema"}
    assert {h["language"] for h in hooks.values()} == {"python"}
    assert hooks["deployer-validate"]["entry"] == "deployer validate"


@pytest.mark.slow
def test_validate_fails_on_a_bad_spec_with_file_and_line_then_both_hooks_pass(
    hooks: Path, tmp_path: Path
) -> None:
    project = copy_example(tmp_path / "project")
    (project / ".gitignore").write_text("charts/*/charts/\n")
    spec = project / "deployer.yaml"
    good = spec.read_text()
    spec.write_text(good.replace("needs: [platform-config]\n", "needs: [platform-confg]\n", 1))
    git(project, "init", "-q")
    git(project, "add", "-A")

    bad = try_repo(project, hooks, tmp_path / "pre-commit-home")

    assert bad.returncode == 1, bad.stdout + bad.stderr
    schema_output, validate_output = bad.stdout.split("deployer schema...", 1)[1].split(
        "deployer validate..."
    )
    assert "error: deployer.yaml:31:13: release 'api' needs 'platform-confg'" in validate_output
    assert "Failed" in validate_output
    assert "deployer-schema: wrote schemas/deployer.schema.json" in schema_output  # a fixer fails once
    written = (project / "schemas" / "deployer.schema.json").read_text()
    assert '"title": "deployer.yaml"' in written

    spec.write_text(good)
    git(project, "add", "-A")
    fixed = try_repo(project, hooks, tmp_path / "pre-commit-home")

    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert fixed.stdout.count("Passed") == 2
