"""A helmfile release's values as deployer's values entries: files and inline maps in order, `secrets:`
files (sops: kept as values files, which deployer decrypts), `set:`/`setString:` as one inline map read
as helm reads `--set`. Pure but for reading the values files the release names."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from deployer.importer import values as vals
from deployer.importer.findings import Kept
from deployer.yamlsource import display_path


def release_entries(
    raw: Mapping[str, Any], base_dir: Path, note: Callable[[str, str], None]
) -> list[vals.Entry]:
    """A helmfile release's values: (files, inline maps), secrets: and set:/setString: as the
    entries deployer lists, in helmfile's order; `note(key, why)` for each that is not carried over."""
    entries: list[vals.Entry] = []
    for kind, key in (("file", "values"), ("secret", "secrets")):
        for item in raw.get(key) or []:
            if isinstance(item, Mapping):
                entries.append(vals.Entry("inline", inline=dict(item)))
                continue
            text = str(item)
            if text.endswith(".gotmpl"):
                note(
                    key,
                    f"values template {text} is rendered by helmfile at deploy time; not carried over",
                )
                continue
            if "://" in text or "::" in text:
                note(key, f"remote values file {text} is not supported; not carried over")
                continue
            path = (base_dir / text).resolve()
            try:
                data = vals.read_values_file(path)
            except vals.EntryProblem as exc:
                fix = (
                    ": create it, then list it under the release's values: in deployer.yaml"
                    if exc.message == "file not found"
                    else ": fix the file, then list it under the release's values: in deployer.yaml"
                )
                note(key, f"{text}: {exc.message}; not carried over{fix}")
                continue
            kind_of: vals.Kind = "secret" if kind == "secret" or vals.is_sops(data) else "file"
            duplicates = vals.duplicate_keys(path) if kind_of == "file" else []
            if duplicates:
                line, dup = duplicates[0]
                note(
                    key,
                    Kept(
                        f"{display_path(path)}:{line} repeats the key '{dup}' (helm keeps the last, "
                        "deployer refuses the file): its values are written inline, as helm reads them; "
                        "remove the first occurrence, then list the file again"
                    ),
                )
                entries.append(vals.Entry("inline", inline=data))
                continue
            entries.append(vals.Entry(kind_of, path))
    try:
        flags = vals.set_flags(raw.get("set") or [], raw.get("setString") or [])
        extra = vals.set_entry(vals.merged(entries), flags, base_dir)
    except vals.EntryProblem as exc:
        note("set", f"{exc.message}; not carried over")
        extra = None
    if extra is not None:
        entries.append(extra)
    return entries
