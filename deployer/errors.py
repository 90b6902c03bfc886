"""The one error hierarchy. Every error carries data and renders its own message."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Mark:
    """A position in a file, 1-based, as editors and compilers print it."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class DeployerError(Exception):
    """Base of every error deployer reports to the user (exit code 1, no traceback)."""

    def __init__(self, message: str, *, hint: str = "", mark: Mark | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.mark = mark

    def render(self) -> str:
        where = f"{self.mark}: " if self.mark else ""
        text = f"error: {where}{self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def __str__(self) -> str:
        return self.render()


class SpecError(DeployerError):
    """Something wrong in deployer.yaml, an overlay or a values file."""


class SpecErrors(DeployerError):
    """Several spec errors found in one pass, reported together, sorted by position."""

    def __init__(self, errors: Sequence[SpecError]) -> None:
        self.errors = sorted(errors, key=_sort_key)
        super().__init__(f"{len(self.errors)} problem(s) found")

    def render(self) -> str:
        return "\n".join(e.render() for e in self.errors)

    @classmethod
    def raise_if_any(cls, errors: Iterable[SpecError]) -> None:
        found = list(errors)
        if len(found) == 1:
            raise found[0]
        if found:
            raise cls(found)


def _sort_key(error: SpecError) -> tuple[str, int, int, str]:
    if error.mark is None:
        return ("", 0, 0, error.message)
    return (error.mark.file, error.mark.line, error.mark.column, error.message)


class UsageError(DeployerError):
    """A command-line argument that cannot work (unknown environment, bad selector, ...)."""


class HelmNotFound(DeployerError):
    """No usable helm binary."""


class HelmError(DeployerError):
    """A helm command failed: carries the (redacted) command, its exit code and stderr."""

    def __init__(
        self, *, command: Sequence[str], returncode: int, stderr: str, release: str = "", stdout: str = ""
    ) -> None:
        self.command = list(command)
        self.returncode = returncode
        self.stderr = stderr.strip()
        self.stdout = stdout  # what helm printed before it failed (e.g. `helm test --logs`)
        self.release = release
        who = f"release {release}: " if release else ""
        super().__init__(f"{who}helm exited with code {returncode}: {' '.join(self.command)}")

    def redacted(self, redact: Callable[[str], str]) -> HelmError:
        """The same error with `redact` applied to what helm printed (it can quote values)."""
        return HelmError(
            command=self.command,
            returncode=self.returncode,
            stderr=redact(self.stderr),
            release=self.release,
            stdout=redact(self.stdout),
        ).with_hint(self.hint)

    def with_hint(self, hint: str) -> HelmError:
        """The same error with a line of advice after what helm printed."""
        out = HelmError(
            command=self.command,
            returncode=self.returncode,
            stderr=self.stderr,
            release=self.release,
            stdout=self.stdout,
        )
        out.hint = hint
        return out

    def render(self) -> str:
        text = f"error: {self.message}"
        if self.stderr:
            text += "\n" + "\n".join(f"  | {line}" for line in self.stderr.splitlines())
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text
