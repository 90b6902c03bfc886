"""Load YAML (1.1, like Helm) into plain data plus the file:line:column of every key and value.

PyYAML's composer gives node marks; we construct the Python values ourselves so that each path in
the document keeps its position, duplicate keys are caught (PyYAML silently keeps the last one),
and `${VAR}` interpolation can be applied to scalars before their type is resolved.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deployer.errors import Mark, SpecError
from deployer.paths import cwd, resolved

PathKey = tuple[str | int, ...]
VAR_TAG = "!var"


@dataclass(frozen=True)
class VarRef:
    """A `!var` value as read from YAML: the tag's text and where it stands (deployer/variables.py
    substitutes it per environment)."""

    text: str
    mark: Mark


@dataclass(frozen=True)
class Deferred:
    """A scalar whose `${VAR}` interpolation waits until it is used (a variable's value: only the
    environment being run needs its variables' process environment)."""

    node: yaml.ScalarNode
    mark: Mark

    def resolve(self, interpolate: Interpolator) -> Any:
        loader = _LOADER("")
        try:
            return _Builder(loader, Document(self.mark.file, None), interpolate)._scalar(self.node)
        finally:
            loader.dispose()


def _deferred_vars(path: PathKey) -> bool:
    """deployer.yaml's variable values: `defaults.vars.*` and `environments.<env>.vars.*`."""
    return (len(path) >= 3 and path[:2] == ("defaults", "vars")) or (
        len(path) >= 4 and path[0] == "environments" and path[2] == "vars"
    )


class HelmDumper(yaml.SafeDumper):
    """PyYAML's safe dumper, but quoting every string that helm's reader (go-yaml v2: YAML 1.1 with
    Go's number syntax) would read as something else, where PyYAML writes it plain: `y` and `n` are
    booleans there, `1e3` and `08` numbers, `0o17` an integer, `2024-1-2 3:04:05` a timestamp."""


# On a dumper, an implicit resolver only decides quoting: a string that one matches is written quoted.
# Generous on purpose (a needless pair of quotes is harmless; a missing one changes the value).
for _tag, _pattern, _first in (
    ("bool", r"^(?:y|Y|n|N)$", "yYnN"),
    ("float", r"^[-+]?(?=[._0-9]*[0-9])[._0-9]*(?:[eE][-+]?[0-9_]+)?$", "-+.0123456789"),
    ("int", r"^[-+]?0[xXoObB][0-9a-fA-F_]+$", "-+0"),
    ("timestamp", r"^[0-9]{4}-", "0123456789"),
):
    HelmDumper.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))


@dataclass
class Document:
    """A parsed YAML file: its data and where every key and value stands."""

    file: str
    data: Any
    value_marks: dict[PathKey, Mark] = field(default_factory=dict)
    key_marks: dict[PathKey, Mark] = field(default_factory=dict)
    encrypted: bool = False  # decrypted from a sops-encrypted file: every value in it is sensitive

    def mark(self, path: PathKey, *, key: bool = False) -> Mark:
        """The closest known position for `path` (walking up to a parent when needed)."""
        marks = self.key_marks if key else self.value_marks
        probe = path
        while probe:
            if probe in marks:
                return marks[probe]
            if probe in self.value_marks:
                return self.value_marks[probe]
            probe = probe[:-1]
        return self.value_marks.get((), Mark(self.file, 1, 1))


Interpolator = Callable[[str, Mark], str]
# libyaml's parser when PyYAML has it: its nodes carry the same line/column marks, and composing a
# 200-release spec took 0.5 s with the pure-Python one (issue 14 profile).
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _mark(file: str, node: yaml.Node) -> Mark:
    return Mark(file, node.start_mark.line + 1, node.start_mark.column + 1)


def display_path(path: Path, base: Path | None = None) -> str:
    """A path as the user wrote it: relative to the working directory when that is shorter."""
    try:
        return str(resolved(path).relative_to(resolved(base) if base else cwd()))
    except ValueError:
        return str(path)


def load_file(
    path: Path,
    *,
    interpolate: Interpolator | None = None,
    shown_as: str | None = None,
    defer_vars: bool = False,
) -> Document:
    name = shown_as or display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"file not found: {name}", hint="create it or fix the path that names it") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{name} is not UTF-8 text ({exc.reason})", mark=Mark(name, 1, 1)) from None
    return load_text(text, name, interpolate=interpolate, defer_vars=defer_vars)


def load_text(
    text: str, file: str, *, interpolate: Interpolator | None = None, defer_vars: bool = False
) -> Document:
    try:
        loader, node = _compose(_LOADER, text)
    except yaml.YAMLError:
        # libyaml words some errors differently: the message comes from the pure-Python parser.
        try:
            loader, node = _compose(yaml.SafeLoader, text)
        except yaml.MarkedYAMLError as exc:
            problem_mark = exc.problem_mark or exc.context_mark
            mark = (
                Mark(file, problem_mark.line + 1, problem_mark.column + 1)
                if problem_mark
                else Mark(file, 1, 1)
            )
            what = exc.problem or exc.context or "invalid YAML"
            raise SpecError(
                f"invalid YAML: {what}", mark=mark, hint="fix the YAML syntax at this position"
            ) from None
        except yaml.YAMLError as exc:
            raise SpecError(f"invalid YAML: {exc}", mark=Mark(file, 1, 1)) from None
    doc = Document(file=file, data=None)
    if node is None:
        doc.value_marks[()] = Mark(file, 1, 1)
        return doc
    builder = _Builder(loader, doc, interpolate)
    builder.defer_vars = defer_vars
    doc.data = builder.build(node, ())
    return doc


def _compose(kind: type[yaml.SafeLoader], text: str) -> tuple[yaml.SafeLoader, yaml.Node | None]:
    loader = kind(text)
    try:
        return loader, loader.get_single_node()
    finally:
        loader.dispose()


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, doc: Document, interpolate: Interpolator | None) -> None:
        self.loader = loader
        self.doc = doc
        self.interpolate = interpolate
        self.defer_vars = False

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        self.doc.value_marks[path] = _mark(self.doc.file, node)
        if node.tag == VAR_TAG:  # a variable reference (deployer/variables.py), resolved per environment
            if not isinstance(node, yaml.ScalarNode):
                raise SpecError(
                    f"{VAR_TAG} takes a variable name or a text, not a "
                    f"{'map' if isinstance(node, yaml.MappingNode) else 'list'}",
                    mark=_mark(self.doc.file, node),
                    hint=f'write {VAR_TAG} NAME, or {VAR_TAG} "text ${{NAME}} text"',
                )
            return VarRef(node.value, _mark(self.doc.file, node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        if self.defer_vars and "$" in node.value and _deferred_vars(path):
            return Deferred(node, _mark(self.doc.file, node))
        return self._scalar(node)

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[str, Any]:
        self.loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            key_mark = _mark(self.doc.file, key_node)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise SpecError("mapping keys must be plain strings", mark=key_mark)
            key = str(key).lower() if isinstance(key, bool) else str(key)
            if key in result:
                first = self.doc.key_marks[(*path, key)]
                raise SpecError(
                    f"duplicate key '{key}' (first defined at line {first.line})",
                    mark=key_mark,
                    hint="YAML keeps only the last one; remove or merge the duplicates",
                )
            self.doc.key_marks[(*path, key)] = key_mark
            result[key] = self.build(value_node, (*path, key))
        return result

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        if self.interpolate is not None and "$" in node.value and node.tag == "tag:yaml.org,2002:str":
            value = self.interpolate(node.value, _mark(self.doc.file, node))
            # A plain scalar (style None; libyaml says ""): resolve its type after substitution.
            tag = node.tag
            if not node.style:
                tag = self.loader.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
            node = yaml.ScalarNode(tag, value, node.start_mark, node.end_mark, node.style)
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise SpecError(f"invalid YAML value: {exc.problem}", mark=_mark(self.doc.file, node)) from None
