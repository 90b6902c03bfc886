"""Real executables that stand in front of the real helm, to observe what reaches it."""

from __future__ import annotations

from pathlib import Path

RECORDING_HELM = """#!/bin/sh
# Records argv (one line per call, NUL-separated) and the mode of every --values file and its
# directory, then runs the real helm. deployer runs helm concurrently: the record is written under
# a lock, or two calls' argv could interleave into one line.
exec 9>>"{log}.lock"
flock 9
printf '%s\\0' "$@" >> "{log}"
printf '\\n' >> "{log}"
prev=""
for arg in "$@"; do
  if [ "$prev" = "--values" ]; then
    stat -c '%a %n' "$arg" "$(dirname "$arg")" >> "{modes}"
  fi
  prev="$arg"
done
exec 9>&-
exec "{real}" "$@"
"""


class RecordingHelm:
    def __init__(self, real: Path, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "helm"
        self.log = directory / "argv.log"
        self.modes = directory / "modes.log"
        self.path.write_text(RECORDING_HELM.format(log=self.log, modes=self.modes, real=real))
        self.path.chmod(0o755)

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [line.split("\0")[:-1] for line in self.log.read_text().splitlines() if line]

    def commands(self) -> list[str]:
        """The helm verb of each call other than `version` (e.g. 'template', 'repo add')."""
        out = []
        for argv in self.calls():
            verb = argv[:2] if argv[:1] in (["repo"], ["dependency"], ["registry"]) else argv[:1]
            if verb != ["version"]:
                out.append(" ".join(verb))
        return out


def fake_helm(directory: Path, version_output: str) -> Path:
    """A 'helm' that only answers `helm version` (for the too-old check)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "helm"
    path.write_text(f"#!/bin/sh\necho '{version_output}'\n")
    path.chmod(0o755)
    return path
