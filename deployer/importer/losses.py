"""Whether a helmfile setting the spec cannot say loses anything for this state file: the report
lists losses only (a setting whose effect is the same under deployer gets no line)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from deployer.importer import flags
from deployer.importer.findings import WHY_DEPENDENCIES, WHY_NONE
from deployer.importer.source import State

# Release keys carried over (the rest is reported); helm's flags are importer/flags.py's.
RELEASE_KEYS = {
    "name", "chart", "version", "namespace", "needs", "labels", "installed", "values", "secrets",
    "set", "setString", "kubeContext", "hooks",
}  # fmt: skip
# Carried by the import of a templated file: helmfile build renders valuesTemplate/setTemplate into
# values/set, and applies the lock file's versions (per environment) to the releases it prints.
RENDERED_BY_HELMFILE = {"valuesTemplate", "setTemplate", "lockFilePath"}

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


def release_keys(
    raw: Mapping[str, Any], base_dir: Path, templated: bool, note: Callable[[str, str], None]
) -> None:
    """A line for each key of a release the spec cannot say, where it loses something."""
    for key in sorted(set(raw) - RELEASE_KEYS):
        if flags.handled(key):
            continue
        if key in MISSING_FILE_KEYS:
            why = missing_file_handler(missing_files([raw], base_dir))
            if why:
                note(key, why)
            continue
        if raw[key] in (None, [], {}, ""):  # e.g. hooks emptied before helmfile read the file
            continue
        if templated and key in RENDERED_BY_HELMFILE:
            continue
        why = {
            "jsonPatches": "kustomize patches are not supported; not carried over",
            "strategicMergePatches": "kustomize patches are not supported; not carried over",
            "transformers": "kustomize transformers are not supported; not carried over",
            "dependencies": WHY_DEPENDENCIES,
            "condition": "conditions are not supported; the release is imported as always enabled",
            "apiVersions": (
                "deployer's apiVersions are per environment; not carried over: write them under "
                "environments.<env>.apiVersions (every release of the environment gets them)"
            ),
        }.get(key, WHY_NONE)
        note(key, why)


def differing(present: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(attribute, report text) for each setting that differs between environments, which deployer
    has once per release."""
    first_env, first = next(iter(present.items()))
    out = []
    for attr in ("namespace", "needs", "labels", "settings"):
        if any(getattr(r, attr) != getattr(first, attr) for r in present.values()):
            shown = ", ".join(f"{e}: {getattr(r, attr)}" for e, r in present.items())
            out.append(
                (
                    attr,
                    f"differs between environments ({shown}); deployer has one {attr} per release (an "
                    "environment overrides only version, chart, installed and values): imported with "
                    f"{first_env}'s; if the others must keep theirs, import each environment on its own "
                    "(deployer import helmfile -e ENV) into its own directory",
                )
            )
    return out
