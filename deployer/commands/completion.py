"""`deployer completion bash|zsh|fish`: the shell code that completes deployer's verbs and flags,
and environment and release names from the spec in the current directory (or -f FILE).

argcomplete, not shtab: shtab writes static scripts for bash and zsh only (no fish), and names
from the spec would need hand-written shell functions per shell; argcomplete asks deployer itself
at each TAB, so one Python function per kind of name serves all three shells. It costs nothing on
ordinary runs: main.py imports it only when the shell asks for completions (_ARGCOMPLETE set).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

SHELLS = ("bash", "zsh", "fish")


def completion(args: argparse.Namespace) -> int:
    from argcomplete.shell_integration import shellcode

    sys.stdout.write(shellcode(["deployer"], shell=args.shell))
    return 0


def _spec(parsed_args: argparse.Namespace) -> dict[str, Any]:
    """deployer.yaml as plain YAML, or {} when it cannot be read: a TAB never prints an error."""
    import yaml

    try:
        doc = yaml.safe_load(Path(getattr(parsed_args, "file", None) or "deployer.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return doc if isinstance(doc, dict) else {}


def environments(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    spec = _spec(parsed_args)
    names = set(spec.get("environments") or {}) if isinstance(spec.get("environments"), dict) else set()
    env_dir = Path(getattr(parsed_args, "file", None) or "deployer.yaml").parent / "environments"
    if env_dir.is_dir():  # environments/<env>/values.yaml by convention
        names |= {p.name for p in env_dir.iterdir() if p.is_dir()}
    return sorted(n for n in map(str, names) if n.startswith(prefix))


def releases(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    entries = _spec(parsed_args).get("releases") or []
    names = {str(r["name"]) for r in entries if isinstance(r, dict) and r.get("name")}
    return sorted(n for n in names if n.startswith(prefix))


def attach(parser: argparse.ArgumentParser) -> None:
    """Give every -e/--environment and RELEASE argument of every verb its completer."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                attach(sub)
        elif action.dest == "environment":
            action.completer = environments  # type: ignore[attr-defined]
        elif action.dest == "release":
            action.completer = releases  # type: ignore[attr-defined]
