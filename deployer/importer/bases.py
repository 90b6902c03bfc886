"""The files a state file names (`bases:`, `helmfiles:`), and its bases layered under it as helmfile
layers them (maps merged, lists appended, the state file last).

A base that is a template (`{{ }}`, .gotmpl) is rendered by helmfile with the state file that names it,
in that file's environment: on its own it may be no state at all (a base of `templates:` only has no
releases, and `helmfile build` refuses it). So a plain state file with such a base is resolved by
`helmfile build` whole, as a templated one is, and what helmfile builds for it is what is imported."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from deployer.errors import DeployerError
from deployer.importer.findings import Finding
from deployer.importer.parts import merge_parts as layered  # helmfile's merge of parts, as of bases
from deployer.importer.parts import template_environment_names
from deployer.importer.source import Source, State, is_templated, read
from deployer.importer.statelists import expand, listed
from deployer.yamlsource import PathKey


def message_of(exc: DeployerError) -> str:
    return f"{exc.mark}: {exc.message}" if exc.mark else exc.message


def read_with_bases(
    path: Path,
    *,
    environments: Sequence[str],
    helmfile: str | None,
    helm: str | None,
    findings: list[Finding],
    named: bool | None = None,
) -> tuple[Source, list[Path]]:
    """The state file at `path` with its bases (see with_bases); and the base files."""
    source = read(path, environments=environments, helmfile=helmfile, helm=helm, named=named)
    if source.templated:
        return with_bases(source, environments, helmfile, helm, findings)
    paths = [p for text, _line, _item in references(source, "bases") for p in expand(source.base_dir, text)]
    templates = [p for p in paths if p.is_file() and is_templated(p, _text(p))]
    if not templates:
        return with_bases(source, environments, helmfile, helm, findings)
    names = list(environments) or _environment_names([path, *paths])
    try:
        built = read(
            path, environments=names, helmfile=helmfile, helm=helm, named=bool(environments), built=True
        )
    except DeployerError:  # no helmfile, or it cannot build the file: each base read on its own
        return with_bases(source, environments, helmfile, helm, findings)
    return built, paths


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def _environment_names(files: Sequence[Path]) -> list[str]:
    names: list[str] = []
    for file in files:
        names += [n for n in template_environment_names(_text(file), str(file)) if n not in names]
    return names


def references(source: Source, key: str) -> list[tuple[str, int, Any]]:
    """(text, line, the entry) of each item under the top-level `key` of a state file: from its data
    for a plain file, from its text for a templated one (helmfile consumed the key)."""
    if not source.templated:
        state = next(iter(source.states.values()))
        items = state.data.get(key) or []
        out = []
        for i, item in enumerate(items if isinstance(items, list) else []):
            text = item.get("path") if isinstance(item, Mapping) else item
            if isinstance(text, str):
                out.append((text, state.locate((key, i), None)[1], item))
        return out
    return listed(source.text, key)


def with_bases(
    source: Source,
    chosen: Sequence[str],
    helmfile: str | None,
    helm: str | None,
    findings: list[Finding],
) -> tuple[Source, list[Path]]:
    """A plain source with its bases layered under it (a templated one: helmfile did it); and the
    base files."""
    paths = [p for text, _line, _item in references(source, "bases") for p in expand(source.base_dir, text)]
    if source.templated or not paths:
        return source, paths
    layers: list[State] = []
    for i, (text, line, _item) in enumerate(references(source, "bases")):
        for path in expand(source.base_dir, text):
            try:
                base = read(path, environments=source.environments, helmfile=helmfile, helm=helm)
            except DeployerError as exc:
                why = f"not read: {message_of(exc)}; not carried over: copy what it holds into deployer.yaml"
                findings.append(Finding(source.shown, line, f"bases[{i}]", why))
                continue
            layers.append(next(iter(base.states.values())))
    own = next(iter(source.states.values()))
    stack = [*layers, own]
    merged: dict[str, Any] = {}
    for layer in stack:
        merged = layered(merged, {k: v for k, v in layer.data.items() if k != "bases"})

    def locate(key_path: PathKey, release: str | None = None) -> tuple[str, int]:
        if len(key_path) >= 2 and isinstance(key_path[1], int):
            index = key_path[1]
            for layer in stack:
                items = layer.data.get(str(key_path[0]))
                count = len(items) if isinstance(items, list) else 0
                if index < count:
                    return layer.locate((key_path[0], index, *key_path[2:]), release)
                index -= count
        for layer in reversed(stack):
            if _has(layer.data, key_path):
                return layer.locate(key_path, release)
        return own.locate(key_path, release)

    envs = merged.get("environments")
    names = list(chosen) or ([str(e) for e in envs] if isinstance(envs, dict) and envs else ["default"])
    states = {e: State(e, merged, locate) for e in names}
    return replace(source, environments=names, states=states), paths


def _has(data: Any, key_path: PathKey) -> bool:
    for key in key_path:
        listed = isinstance(data, list) and isinstance(key, int) and key < len(data)
        if (isinstance(data, Mapping) and key in data) or listed:
            data = data[key]
        else:
            return False
    return True
