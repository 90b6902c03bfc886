"""Declared noise: `ignore:` rules that leave fields of named objects out of a diff. Pure.

A rule names objects (`kind`, `name`, `namespace`, `group`; `*` and `?` wildcards; an absent key
matches anything) and `fields`, each a JSON pointer (`/spec/replicas`,
`/metadata/annotations/cert-manager.io~1inject-ca-from`) or a dotted path (`spec.replicas`,
`metadata.annotations["cert-manager.io/inject-ca-from"]`, `webhooks[*].clientConfig.caBundle`). A
`*` segment (or `[*]`) is any key of a mapping or any item of a list; a number is a list index.

An ignored field is taken out of both sides of a changed object before they are compared: an object
whose only differences are ignored is no change, and each ignored difference is counted. Rules never
apply to an object that is added or removed (an install, an uninstall, a whole-object change).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deployer.manifests import ResourceKey

ANY: None = None  # a wildcard segment
Segment = str | None
_MISSING = object()


class PathSyntaxError(ValueError):
    """A field path that does not parse; the message says how to write it."""


def parse_path(text: str) -> tuple[Segment, ...]:
    """A JSON pointer (starts with `/`) or a dotted path, as segments (None: any key or item)."""
    if not text or not text.strip():
        raise PathSyntaxError("a field path cannot be empty: write e.g. /spec/replicas or spec.replicas")
    if text.startswith("/"):
        return tuple(_pointer_segment(part, text) for part in text[1:].split("/"))
    return _dotted(text)


def _pointer_segment(part: str, text: str) -> Segment:
    if re.search(r"~(?![01])", part):
        raise PathSyntaxError(
            f"JSON pointer {text!r}: '~' must be followed by 0 ('~0' is '~') or 1 ('~1' is '/')"
        )
    if part == "":
        raise PathSyntaxError(f"JSON pointer {text!r} has an empty segment ('//' or a trailing '/')")
    if part == "*":
        return ANY
    return part.replace("~1", "/").replace("~0", "~")


_BRACKET = re.compile(r"""\[(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|(\*|\d+))\]""")
_KEY = re.compile(r"[^.\[\]\"']+")


def _dotted(text: str) -> tuple[Segment, ...]:
    segments: list[Segment] = []
    pos = 0
    expect_key = True  # at the start or after a '.'
    while pos < len(text):
        if text[pos] == "[":
            found = _BRACKET.match(text, pos)
            if found is None:
                raise PathSyntaxError(
                    f"path {text!r}: at column {pos + 1}, write [0] or [*] for a list item, or "
                    '["key.with.dots"] for a key'
                )
            quoted = found.group(1) if found.group(1) is not None else found.group(2)
            if quoted is not None:
                segments.append(re.sub(r"\\(.)", r"\1", quoted))
            else:
                segments.append(ANY if found.group(3) == "*" else found.group(3))
            pos, expect_key = found.end(), False
            continue
        if text[pos] == ".":
            if expect_key:
                raise PathSyntaxError(f"path {text!r} has an empty segment at column {pos + 1}")
            pos, expect_key = pos + 1, True
            continue
        if not expect_key:
            raise PathSyntaxError(f"path {text!r}: expected '.' or '[' at column {pos + 1}")
        found = _KEY.match(text, pos)
        if found is None:
            raise PathSyntaxError(
                f"path {text!r}: unexpected {text[pos]!r} at column {pos + 1}; quote a key that holds "
                'it: ["key"]'
            )
        segments.append(ANY if found.group(0) == "*" else found.group(0))
        pos, expect_key = found.end(), False
    if expect_key:
        raise PathSyntaxError(f"path {text!r} ends with '.'")
    return tuple(segments)


def pointer(path: Sequence[str | int]) -> str:
    """A concrete path as a JSON pointer."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


@dataclass(frozen=True)
class Rule:
    kind: str = "*"
    name: str = "*"
    namespace: str = "*"
    group: str | None = None  # None: any API group ("" is the core group)
    fields: tuple[tuple[Segment, ...], ...] = ()

    def matches(self, key: ResourceKey) -> bool:
        return (
            fnmatchcase(key.kind, self.kind)
            and fnmatchcase(key.name, self.name)
            and fnmatchcase(key.namespace, self.namespace)
            and (self.group is None or fnmatchcase(key.group, self.group))
        )


@dataclass(frozen=True, order=True)
class IgnoredChange:
    """One difference a rule left out: where (`resources`, `hooks` or `drift`), which object, which
    field (a JSON pointer)."""

    where: str
    key: ResourceKey
    path: str


def rules_of(specs: Sequence[Any]) -> tuple[Rule, ...]:
    """Rules from the spec's models (deployer.model.IgnoreRule)."""
    return tuple(
        Rule(
            kind=s.kind,
            name=s.name,
            namespace=s.namespace,
            group=s.group,
            fields=tuple(parse_path(f) for f in s.fields),
        )
        for s in specs
    )


def _expand(
    node: Any, pattern: Sequence[Segment], prefix: tuple[str | int, ...] = ()
) -> Iterator[tuple[str | int, ...]]:
    """Every concrete path in `node` that `pattern` names (only paths that exist)."""
    if not pattern:
        yield prefix
        return
    head, rest = pattern[0], pattern[1:]
    if isinstance(node, Mapping):
        keys = list(node) if head is ANY else [head] if head in node else []
        for k in keys:
            yield from _expand(node[k], rest, (*prefix, k))
    elif isinstance(node, list):
        if head is ANY:
            indexes: Sequence[int] = range(len(node))
        elif head.isdigit() and int(head) < len(node):
            indexes = [int(head)]
        else:
            indexes = []
        for i in indexes:
            yield from _expand(node[i], rest, (*prefix, i))


def _has(node: Any, part: str | int) -> bool:
    if isinstance(node, Mapping):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and part < len(node)


def _get(node: Any, path: Sequence[str | int]) -> Any:
    for part in path:
        if not _has(node, part):
            return _MISSING
        node = node[part]
    return node


def _delete(node: Any, path: Sequence[str | int]) -> None:
    parent = _get(node, path[:-1])
    if _has(parent, path[-1]):
        del parent[path[-1]]


def _order(path: tuple[str | int, ...]) -> tuple[tuple[int, str], ...]:
    return tuple((p, "") if isinstance(p, int) else (-1, p) for p in path)


def strip(
    rules: Sequence[Rule], key: ResourceKey, before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Both sides of a changed object without the fields the rules name, and the JSON pointers of
    those that differed. The inputs are not modified."""
    matching = [r for r in rules if r.matches(key)]
    if not matching:
        return dict(before), dict(after), []
    old, new = copy.deepcopy(dict(before)), copy.deepcopy(dict(after))
    paths: set[tuple[str | int, ...]] = set()
    for rule in matching:
        for pattern in rule.fields:
            paths.update(_expand(old, pattern))
            paths.update(_expand(new, pattern))
    differed = sorted(pointer(p) for p in paths if _get(old, p) != _get(new, p))
    # Deepest and highest list index first, so that deleting one path never moves another.
    for path in sorted(paths, key=_order, reverse=True):
        _delete(old, path)
        _delete(new, path)
    return old, new, differed
