"""Run the deployer CLI in-process, as a user would from a shell in a given directory."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deployer.main import main


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@contextlib.contextmanager
def _environment(cwd: Path, env: Mapping[str, str | None]) -> Iterator[None]:
    old_cwd, saved = Path.cwd(), {k: os.environ.get(k) for k in env}
    os.chdir(cwd)
    _set(env)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        _set(saved)


def _set(env: Mapping[str, str | None]) -> None:
    """Set each variable; None unsets it."""
    for key, value in env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def run(argv: Sequence[str], cwd: Path, env: Mapping[str, str | None] | None = None) -> Result:
    out, err = io.StringIO(), io.StringIO()
    with _environment(cwd, env or {}), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse errors
            code = int(exc.code or 0)
    return Result(code, out.getvalue(), err.getvalue())


def tree_state(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under root with its mode, mtime and content: to prove nothing was touched."""
    state: dict[str, tuple[int, int, bytes]] = {}
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        state[str(path.relative_to(root))] = (
            stat.st_mode,
            stat.st_mtime_ns,
            path.read_bytes() if path.is_file() else b"",
        )
    return state
