"""A spec in several files: `include:` in deployer.yaml names files (or glob patterns) relative to it,
each holding `releases:` (and, if a team brings its own, `repositories:`), so that each team keeps its
releases in a file of its own (CODEOWNERS).

The included files are merged into deployer.yaml's document before it is checked: their releases and
repositories come after deployer.yaml's own, in the order the patterns and then the sorted file names
give, and every position keeps its own file, so an error in an included release names that file's
line. Paths inside an included file (values files, local charts) are relative to deployer.yaml, like
every path of the spec. Only deployer.yaml includes: an included file that has `include:` is an
error, as is a file no pattern of which matches anything (a typo would otherwise drop a team's
releases silently). `diff --base` reads the included files as of the base commit, because it reads
the whole spec from a checkout of that commit.
"""

from __future__ import annotations

from pathlib import Path

from deployer.errors import SpecError, SpecErrors
from deployer.interpolation import Interpolator
from deployer.yamlsource import Document, PathKey, load_file

INCLUDABLE = ("repositories", "releases")


def merge_includes(doc: Document, root: Path, interpolate: Interpolator) -> list[Path]:
    """Load the files `doc`'s `include:` names into `doc` (data and marks). The files, in order."""
    patterns = doc.data.get("include") if isinstance(doc.data, dict) else None
    if not isinstance(patterns, list):
        return []  # absent; any other shape is reported by the schema check
    errors: list[SpecError] = []
    files: list[Path] = []
    for i, pattern in enumerate(patterns):
        if not isinstance(pattern, str):
            continue  # the schema check reports it
        mark = doc.mark(("include", i))
        matches = _expand(root, pattern)
        if not matches:
            errors.append(
                SpecError(
                    f"include '{pattern}' matches no file",
                    mark=mark,
                    hint="paths and patterns are relative to deployer.yaml; fix it or remove the entry",
                )
            )
        files.extend(m for m in matches if m not in files)
    SpecErrors.raise_if_any(errors)
    for path in files:
        try:
            _merge_one(doc, load_file(path, interpolate=interpolate, defer_vars=False))
        except SpecError as exc:
            errors.append(exc)
    SpecErrors.raise_if_any(errors)
    return files


def _expand(root: Path, pattern: str) -> list[Path]:
    if any(c in pattern for c in "*?["):
        return sorted(p.resolve() for p in root.glob(pattern) if p.is_file())
    path = (root / pattern).resolve()
    return [path] if path.is_file() else []


def _merge_one(doc: Document, included: Document) -> None:
    data = included.data if included.data is not None else {}
    if not isinstance(data, dict):
        raise SpecError(
            "an included file must be a mapping with releases: (and repositories:)",
            mark=included.mark(()),
            hint="write 'releases:' followed by the list of releases",
        )
    for key in data:
        if key not in INCLUDABLE:
            hint = (
                "only deployer.yaml includes files: list this one there"
                if key == "include"
                else f"an included file holds {' and '.join(INCLUDABLE)}; {key} belongs in deployer.yaml"
            )
            raise SpecError(
                f"'{key}' is not allowed in an included file", mark=included.mark((key,), key=True), hint=hint
            )
    for key in INCLUDABLE:
        items = data.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            raise SpecError(
                f"'{key}' must be a list",
                mark=included.mark((key,)),
                hint=f"write '{key}:' followed by '- ...' items",
            )
        target = doc.data.setdefault(key, [])
        if not isinstance(target, list):
            return  # deployer.yaml's own shape error is reported by the schema check
        offset = len(target)
        target.extend(items)
        _shift_marks(doc, included, key, offset)


def _shift_marks(doc: Document, included: Document, key: str, offset: int) -> None:
    """Every position under `key` of the included file, at its place in the merged list."""
    for source, target in ((included.value_marks, doc.value_marks), (included.key_marks, doc.key_marks)):
        for path, mark in source.items():
            if len(path) >= 2 and path[0] == key and isinstance(path[1], int):
                shifted: PathKey = (key, path[1] + offset, *path[2:])
                target[shifted] = mark
