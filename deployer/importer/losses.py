"""Whether a helmfile setting the spec cannot say loses anything for this state file: the report
lists losses only (a setting whose effect is the same under deployer gets no line)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deployer.importer.source import State

# helmfile's setting for a missing values file (a line only when a file it governs is missing).
MISSING_FILE_KEYS = {"missingFileHandler", "missingFileHandlerConfig"}


def missing_files(raws: list[Any], base_dir: Path) -> list[str]:
    """The values/secrets files these releases list that do not exist (globs and URLs aside)."""
    out: set[str] = set()
    for raw in raws:
        if not isinstance(raw, Mapping):
            continue
        for key in ("values", "secrets"):
            for item in raw.get(key) or []:
                if not isinstance(item, str) or "://" in item or "::" in item:
                    continue
                if not any(c in item for c in "*?[{") and not (base_dir / item).exists():
                    out.add(item)
    return sorted(out)


def missing_file_handler(missing: list[str]) -> str | None:
    """The line for missingFileHandler, or None when every file it governs exists (nothing differs)."""
    if not missing:
        return None
    return (
        f"no deployer equivalent, and it governs files that are missing ({', '.join(missing)}): deployer "
        "refuses a missing values file, so the import left them out (see their lines); create them and "
        "list them under the release's values:, or leave them out"
    )


def template_readers(state: State) -> str:
    """What reads a plain state file's state or environment values: its releases' values templates
    (`.gotmpl` files, valuesTemplate, setTemplate); '' when nothing does (nothing is lost then)."""
    out = []
    for raw in state.data.get("releases") or []:
        if not isinstance(raw, Mapping):
            continue
        name = str(raw.get("name", ""))
        entries = [str(v) for k in ("values", "secrets") for v in raw.get(k) or []]
        files = [v for v in entries if v.endswith(".gotmpl")]
        keys = [k for k in ("valuesTemplate", "setTemplate") if raw.get(k)]
        out += [f"releases[{name}] {x}" for x in files + keys]
    return ", ".join(out)


def values_read_by(readers: str, environment: str | None) -> str:
    where = f"environments.{environment}.releases" if environment else "defaults"
    return (
        f"{'environment' if environment else 'state'} values are only read by templates: here by {readers}, "
        "which the import does not carry over (see its line); write the values they produce into the "
        f"release's values: in deployer.yaml (or under {where})"
    )
