"""`deployer completion bash`, sourced into a real bash that completes as at an interactive TAB:
verbs, flags, and the environment and release names of the spec in the current directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testing.example import copy_example

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A `deployer` on PATH running this working tree."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "deployer"
    exe.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m deployer "$@"\n')
    exe.chmod(0o755)
    return bin_dir


def complete(line: str, cwd: Path, bin_dir: Path, shell_code: str) -> list[str]:
    """COMPREPLY after sourcing `shell_code` and pressing TAB at the end of `line`."""
    script = (
        f"source {shlex_quote(shell_code)}\n"
        'COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}; COMP_TYPE=9\n'
        'read -ra COMP_WORDS <<< "$COMP_LINE"\n'
        '[[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")\n'
        "COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n"
        '_python_argcomplete deployer "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"\n'
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script, "bash", line],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return sorted(w.strip() for w in done.stdout.splitlines() if w.strip())


def shlex_quote(path: str) -> str:
    return "'" + path.replace("'", "'\\''") + "'"


@pytest.fixture
def bash_code(tmp_path: Path, bin_dir: Path) -> str:
    out = subprocess.run(
        [str(bin_dir / "deployer"), "completion", "bash"], check=True, capture_output=True, text=True
    ).stdout
    assert "complete " in out and "deployer" in out
    path = tmp_path / "deployer.bash"
    path.write_text(out)
    return str(path)


needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")


@needs_bash
def test_diff_dash_e_completes_the_specs_environments(tmp_path: Path, bin_dir: Path, bash_code: str) -> None:
    project = copy_example(tmp_path / "project")

    assert complete("deployer diff -e ", project, bin_dir, bash_code) == ["dev", "prod", "staging"]
    assert complete("deployer diff -e pr", project, bin_dir, bash_code) == ["prod"]


@needs_bash
def test_values_completes_release_names_and_verbs_and_flags_complete_too(
    tmp_path: Path, bin_dir: Path, bash_code: str
) -> None:
    project = copy_example(tmp_path / "project")

    assert complete("deployer values -e prod ", project, bin_dir, bash_code) == [
        "api",
        "platform-config",
        "worker",
    ]
    assert complete("deployer va", project, bin_dir, bash_code) == ["validate", "values"]
    assert "--detailed-exitcode" in complete("deployer diff --de", project, bin_dir, bash_code)


@needs_bash
def test_with_no_spec_here_names_complete_to_nothing_and_no_error(
    tmp_path: Path, bin_dir: Path, bash_code: str
) -> None:
    assert complete("deployer diff -e ", tmp_path, bin_dir, bash_code) == []


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_code_is_printed(shell: str, bin_dir: Path) -> None:
    out = subprocess.run(
        [str(bin_dir / "deployer"), "completion", shell], check=True, capture_output=True, text=True
    ).stdout
    assert "deployer" in out
    assert ("compdef" in out) if shell == "zsh" else ("complete --command deployer" in out)


@needs_bash
def test_lock_completes_as_a_verb_with_its_check_flag_and_environments(
    tmp_path: Path, bin_dir: Path, bash_code: str
) -> None:
    project = copy_example(tmp_path / "project")

    assert complete("deployer lo", project, bin_dir, bash_code) == ["lock"]
    assert complete("deployer lock --ch", project, bin_dir, bash_code) == ["--check"]
    assert complete("deployer lock -e ", project, bin_dir, bash_code) == ["dev", "prod", "staging"]


@needs_bash
def test_test_verb_and_apply_test_flag_complete(tmp_path: Path, bin_dir: Path, bash_code: str) -> None:
    project = copy_example(tmp_path / "project")

    assert complete("deployer te", project, bin_dir, bash_code) == ["template", "test"]
    assert complete("deployer test -e st", project, bin_dir, bash_code) == ["staging"]
    assert "--test" in complete("deployer apply --te", project, bin_dir, bash_code)
