"""A helmfile state file's text read without helmfile: its parts (YAML documents separated by
`---`) merged as helmfile merges them, the environments it names, and positions in it."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from deployer.errors import Mark, SpecError
from deployer.importer.findings import Kept
from deployer.importer.messages import PART as _PART
from deployer.importer.sandbox import split_v0
from deployer.yamlsource import Document, PathKey, load_text

# (path in the state, release name when the path is under releases) -> (file, line)
Locator = Callable[[PathKey, str | None], tuple[str, int]]
_TEMPLATE = re.compile(r"\{\{.*?\}\}", re.S)
V0_WHAT = "environments and releases in one YAML part"
V0_WHY = Kept(
    "helmfile v0's layout, imported as v0 read it; helmfile v1 refuses this file: if you keep using "
    "helmfile, put a `---` line between the environments: section and the rest"
)


def parse_parts(
    text: str, shown: str, notes: list[tuple[str, int, str, str]]
) -> tuple[dict[str, Any], Locator]:
    """helmfile's parts (YAML documents separated by ---) merged as helmfile merges them (mergo with
    override and appended lists), with the position of every key kept."""
    merged: dict[str, Any] = {}
    value_marks: dict[PathKey, Mark] = {}
    key_marks: dict[PathKey, Mark] = {}
    starts = [0] + [m.end() + 1 for m in _PART.finditer(text)]
    ends = [m.start() for m in _PART.finditer(text)] + [len(text)]
    for start, end in zip(starts, ends, strict=True):
        offset = text.count("\n", 0, start)
        doc = load_text("\n" * offset + text[start:end], shown)
        if doc.data is None:
            continue
        if not isinstance(doc.data, dict):
            raise SpecError(
                "a helmfile state must be a mapping (repositories, releases, environments, ...)",
                mark=doc.mark(()),
            )
        if "environments" in doc.data and "releases" in doc.data:  # helmfile v0's layout
            mark = doc.mark(("releases",), key=True)
            notes.append(
                (
                    shown,
                    mark.line,
                    V0_WHAT,
                    V0_WHY,
                )
            )
        shifts = {k: len(merged[k]) for k, v in doc.data.items() if isinstance(v, list) and k in merged}
        for marks, into in ((doc.value_marks, value_marks), (doc.key_marks, key_marks)):
            for key_path, mark in marks.items():
                into[_shift(key_path, shifts)] = mark
        merged = merge_parts(merged, doc.data)
    located = Document(shown, merged, value_marks, key_marks)

    def locate(key_path: PathKey, release: str | None = None) -> tuple[str, int]:
        mark = located.mark(key_path, key=True)
        return mark.file, mark.line

    return merged, locate


def _shift(key_path: PathKey, shifts: Mapping[str, int]) -> PathKey:
    if len(key_path) >= 2 and isinstance(key_path[0], str) and isinstance(key_path[1], int):
        return (key_path[0], key_path[1] + shifts.get(key_path[0], 0), *key_path[2:])
    return key_path


def merge_parts(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(out.get(key), dict) and isinstance(value, Mapping):
            out[key] = merge_parts(out[key], value)
        elif isinstance(out.get(key), list) and isinstance(value, list):
            out[key] = [*out[key], *value]
        else:
            out[key] = value
    return out


def environment_names(data: Mapping[str, Any]) -> list[str]:
    envs = data.get("environments")
    return [str(k) for k in envs] if isinstance(envs, dict) else []


def template_environment_names(text: str, shown: str) -> list[str]:
    """The environments of a templated file, read from whichever of its parts parses once each
    `{{ }}` is blanked out (environments are rarely templated themselves)."""
    names: list[str] = []
    for part in _PART.split(split_v0(text)[0]):  # v0's layout: environments: in a part of its own
        blanked = _TEMPLATE.sub("x", part)
        try:
            data = yaml.safe_load(blanked)
        except yaml.YAMLError:
            continue
        if isinstance(data, dict):
            names += [n for n in environment_names(data) if n not in names and "{" not in n]
    return names


def text_locator(text: str, shown: str) -> Locator:
    """Positions in a templated file, found by searching its text (helmfile's output has none):
    a release by its `name:`, a key by its name after that."""
    lines = text.splitlines()
    names: dict[str, int] = {}
    for i, line in enumerate(lines):
        found = re.match(r"""^\s*(?:-\s+)?name:\s*["']?([^"'\s#]+)""", line)
        if found:
            names.setdefault(found.group(1), i)

    def find(pattern: str, start: int) -> int | None:
        regex = re.compile(pattern)
        return next((i for i in range(start, len(lines)) if regex.search(lines[i])), None)

    def locate(key_path: PathKey, release: str | None = None) -> tuple[str, int]:
        line: int | None = None
        if not key_path:
            return shown, 1
        top = str(key_path[0])
        line = find(rf"^{re.escape(top)}\s*:", 0)
        rest = list(key_path[1:])
        if top == "releases" and rest and isinstance(rest[0], int):
            rest.pop(0)
            line = names.get(release or "", line)
        for key in rest:
            if isinstance(key, int):
                continue
            found = find(rf"""^\s*(?:-\s+)?["']?{re.escape(key)}["']?\s*:""", line or 0)
            if found is None:
                break
            line = found
        return shown, (line or 0) + 1

    return locate
