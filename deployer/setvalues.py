"""Helm's `--set` family of flags, as deployer value layers.

A port of helm's strvals parser (helm.sh/helm pkg/strvals/parser.go and literal_parser.go, which Helm
3.22 and 4.x share) that, instead of writing into one map, returns each assignment as a path (keys and
list indexes), a value and its own text, so that `--explain` and diffs can name it. `stack` then
applies the assignments in helm's order on top of a release's values, as helm applies them onto its
merged `-f` files, and makes one Layer of each.

Deliberate differences from helm, where helm silently does something surprising or fails with a Go
panic message:
- an empty key (`=x`, `a..b=x`) and a path with no `=` after a list index (`a[0]`) are errors (helm
  ignores the first and sets `a: []` for the second);
- an assignment through a value of another type (`a=1,a.b=2`, an index on a map) replaces that value,
  as deployer's merge does (helm fails with "interface conversion").
Pure: a --set-file's content comes from the reader the caller passes.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployer.errors import UsageError
from deployer.merge import Layer, Origin, ValuePath, merge_values
from deployer.secrets import MASK, is_sensitive

# helm's MergeValues (pkg/cli/values/options.go) applies the flags in this order after the -f files,
# whatever their order on the command line.
FLAG_ORDER = ("--set-json", "--set", "--set-string", "--set-file", "--set-literal")
MAX_INDEX = 65536  # strvals.MaxIndex: `a[99999999]=x` would allocate that many nulls
MAX_NESTED_NAME_LEVEL = 30  # strvals.MaxNestedNameLevel

Key = str | int
Reader = Callable[[str], str]

_HINTS = {
    "--set": "write --set key=value[,key=value]: a.b=x nests, a[0]=x sets a list item, a={x,y} is a "
    "list; escape , . = [ with a backslash",
    "--set-string": "write --set-string key=value[,key=value] (like --set, every value a string)",
    "--set-file": "write --set-file key=path[,key=path] (the value is the file's content)",
    "--set-json": "write --set-json key=JSON[,key=JSON], or one JSON object: --set-json '{\"key\": 1}'",
    "--set-literal": "write --set-literal key=value (the value is taken as is, commas included)",
}
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_INT64 = range(-(2**63), 2**63)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Go's encoding/json, like JSON itself, has no NaN or Infinity; Python's decoder accepts them.
_JSON = json.JSONDecoder(parse_constant=_no_constant)


@dataclass(frozen=True)
class Assignment:
    """One `key=value` of a flag. An empty path is a whole JSON object (`--set-json '{...}'`),
    merged at the top like a values file."""

    flag: str
    key_text: str  # as written: "a.b[1].c"
    value_text: str  # as written: "x\\,y"
    path: tuple[Key, ...]
    value: Any

    def origin(self, *, masked: bool = False) -> Origin:
        shown = MASK if masked else self.value_text
        return Origin(f"{self.flag} {self.key_text}={shown}" if self.path else f"{self.flag} {shown}")


def typed_value(text: str) -> Any:
    """helm's typedVal: true, false and null in any case, and integer literals that fit in 64 bits.
    Anything else stays a string: `1.10`, `1e3`, and a leading zero (`0755`, `00009`; `0` is 0)."""
    folded = text.casefold()
    if folded in ("true", "false"):
        return folded == "true"
    if folded == "null":
        return None
    if text == "0":
        return 0
    if text[:1] != "0" and _INTEGER.fullmatch(text) and int(text) in _INT64:
        return int(text)
    return text


def parse(flag: str, text: str, read_file: Reader | None = None) -> list[Assignment]:
    """One flag's text, assignment by assignment, as helm reads it; a UsageError if it cannot."""
    try:
        if flag == "--set-json" and text.strip().startswith("{"):
            return [_json_object(text)]
        return list(_Parser(flag, text, read_file).assignments())
    except _Invalid as exc:
        raise UsageError(f"invalid {flag} '{text}': {exc}", hint=exc.hint or _HINTS[flag]) from None


def parse_flags(flags: Mapping[str, Sequence[str]], read_file: Reader) -> list[Assignment]:
    """Every flag's assignments in the order helm applies them: by flag (FLAG_ORDER), then as given."""
    return [a for flag in FLAG_ORDER for text in flags.get(flag, ()) for a in parse(flag, text, read_file)]


def stack(
    lower: Sequence[Layer], extra: Sequence[Layer | Assignment], sensitive: Sequence[str] = ()
) -> list[Layer]:
    """The command-line layers of one release, over its own `lower` layers.

    Each assignment is applied to the values below it, as helm applies --set onto its merged -f
    files: `list[1]=x` changes item 1 of the list below and keeps the others. An assignment to a
    `sensitive` path names the flag without its value.
    """
    if not any(isinstance(item, Assignment) for item in extra):
        return [item for item in extra if isinstance(item, Layer)]
    base: dict[str, Any] = {}
    for layer in lower:
        base = merge_values(base, layer.values)
    out: list[Layer] = []
    for item in extra:
        if isinstance(item, Layer):
            base = merge_values(base, item.values)
            out.append(item)
            continue
        out.append(_layer(base, item, sensitive))
        base = _put(base, item.path, item.value) if item.path else merge_values(base, item.value)
    return out


def _layer(base: Mapping[str, Any], item: Assignment, sensitive: Sequence[str]) -> Layer:
    keys = _leading_keys(item.path)
    if len(keys) == len(item.path):
        value = item.value
    else:
        # The layer carries the whole list, as it stands after this assignment: lists replace in
        # the merge, and --explain shows a list as one leaf, so the origin goes on the list's path.
        value = _put(_get(base, keys), item.path[len(keys) :], item.value)
    nested: Any = copy.deepcopy(value)
    for key in reversed(keys):
        nested = {key: nested}
    origin = item.origin(masked=_touches(keys, _node_paths(value, keys), sensitive))
    origins = {keys[: i + 1]: origin for i in range(len(keys))}
    origins.update((path, origin) for path in _node_paths(value, keys))
    # A JSON object set at a key replaces the map below it (helm's set), where a layer would merge.
    replace = frozenset([keys]) if keys and isinstance(value, Mapping) else frozenset()
    return Layer(values=nested, origins=origins, replace=replace)


def _touches(keys: ValuePath, paths: Iterator[ValuePath], sensitive: Sequence[str]) -> bool:
    return is_sensitive(keys, sensitive) or any(is_sensitive(p, sensitive) for p in paths)


def _leading_keys(path: tuple[Key, ...]) -> ValuePath:
    keys: list[str] = []
    for part in path:
        if not isinstance(part, str):
            break
        keys.append(part)
    return tuple(keys)


def _get(values: Any, keys: ValuePath) -> Any:
    for key in keys:
        values = values.get(key) if isinstance(values, Mapping) else None
    return values


def _put(node: Any, path: Sequence[Key], value: Any) -> Any:
    """`node` with `value` at `path`, as helm's parser sets it into existing values: a list grows
    with nulls up to the index, and a value of the wrong type is replaced. `node` is not changed."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        items = list(node) if isinstance(node, list) else []
        items.extend([None] * (head + 1 - len(items)))
        items[head] = _put(items[head], rest, value)
        return items
    mapping = dict(node) if isinstance(node, Mapping) else {}
    mapping[head] = _put(mapping.get(head), rest, value)
    return mapping


def _node_paths(value: Any, path: ValuePath) -> Iterator[ValuePath]:
    yield path
    if isinstance(value, Mapping):
        for key, sub in value.items():
            yield from _node_paths(sub, (*path, str(key)))


def _json_object(text: str) -> Assignment:
    # Helm 4 only; Helm 3.22 rejects it. Harmless to accept: deployer merges the values itself.
    try:
        value = _JSON.decode(text.strip())
    except ValueError as exc:
        raise _Invalid(f"invalid JSON: {exc}") from None
    return Assignment("--set-json", "", text, (), value)


class _Invalid(Exception):
    def __init__(self, reason: str, hint: str = "") -> None:
        super().__init__(reason)
        self.hint = hint


class _Parser:
    """helm's strvals parser, read rune by rune as helm does, with the same stop characters."""

    def __init__(self, flag: str, text: str, read_file: Reader | None) -> None:
        self.flag = flag
        self.text = text
        self.pos = 0
        self.literal = flag == "--set-literal"  # no escapes, no comma lists, value = rest of the text
        self.read_file = read_file
        self.value_start = self.value_end = 0

    def assignments(self) -> Iterator[Assignment]:
        while True:
            start = self.pos
            parsed = self._key(0, start, top=True)
            if parsed is None:
                return
            path, value = parsed
            yield Assignment(
                self.flag,
                self.text[start : self.value_start - 1],
                self.text[self.value_start : self.value_end],
                path,
                value,
            )

    def _until(self, stops: str) -> tuple[str, str]:
        """helm's runesUntil: the text up to the first stop character that is not escaped, and that
        character ("" at the end). A backslash escapes any character; a trailing one is dropped."""
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char in stops:
                return "".join(out), char
            if char == "\\" and not self.literal:
                if self.pos == len(self.text):
                    break
                char = self.text[self.pos]
                self.pos += 1
            out.append(char)
        return "".join(out), ""

    def _key(self, level: int, start: int, *, top: bool = False) -> tuple[tuple[Key, ...], Any] | None:
        key, last = self._until("=[." if self.literal else "=[,.")
        if not last:
            if not key and top:
                return None
            raise _Invalid(f'key "{self.text[start:]}" has no value')
        if last == ",":
            raise _Invalid(f'key "{key}" has no value (cannot end with ,)')
        if not key:
            raise _Invalid(f'empty key in "{self.text[start:]}"')
        if last == ".":
            level += 1
            if level > MAX_NESTED_NAME_LEVEL:
                raise _Invalid(
                    "value name nested level is greater than maximum supported nested level of "
                    f"{MAX_NESTED_NAME_LEVEL}"
                )
            path, value = self._required_key(level, start)
            return (key, *path), value
        if last == "[":
            index = self._index()
            path, value = self._list_item(level, start)
            return (key, index, *path), value
        return (key,), self._value()

    def _required_key(self, level: int, start: int) -> tuple[tuple[Key, ...], Any]:
        parsed = self._key(level, start)
        assert parsed is not None  # only the top level may end without a key
        return parsed

    def _index(self) -> int:
        text, last = self._until("]")
        if not last:
            raise _Invalid("error parsing index: EOF")
        if not _INTEGER.fullmatch(text):
            raise _Invalid(f'error parsing index: strconv.Atoi: parsing "{text}": invalid syntax')
        index = int(text)
        if index not in _INT64:
            raise _Invalid(f'error parsing index: strconv.Atoi: parsing "{text}": value out of range')
        if index < 0:
            raise _Invalid(f"negative {index} index not allowed")
        if index > MAX_INDEX:
            raise _Invalid(f"index of {index} is greater than maximum supported index of {MAX_INDEX}")
        return index

    def _list_item(self, level: int, start: int) -> tuple[tuple[Key, ...], Any]:
        """What follows `[i]`: `=value`, another `[j]`, or `.key...`."""
        rest, last = self._until("[.=")
        if rest:
            raise _Invalid(f'unexpected data at end of array index: "{rest}"')
        if not last:
            raise _Invalid(f'key "{self.text[start:]}" has no value')
        if last == "=":
            return (), self._value()
        if last == "[":
            index = self._index()
            path, value = self._list_item(level, start)
            return (index, *path), value
        return self._required_key(level, start)

    def _value(self) -> Any:
        self.value_start = self.pos
        if self.literal:
            self.pos = self.value_end = len(self.text)
            return self.text[self.value_start :]
        if self.flag == "--set-json":
            return self._json_value()
        if self.pos == len(self.text):  # `a=` at the end: "" (and no file read for --set-file)
            self.value_end = self.pos
            return ""
        if self.text[self.pos] == "{":
            return self._list()
        raw, last = self._until(",")
        self.value_end = self.pos - 1 if last else self.pos
        return self._read(raw)

    def _list(self) -> list[Any]:
        """`{a,b}`: each item read like a value (typed, a string, or a file's content)."""
        self.pos += 1
        items: list[Any] = []
        while True:
            raw, last = self._until(",}")
            if not last:
                raise _Invalid("list must terminate with '}'")
            items.append(self._read(raw))
            if last == "}":
                self.value_end = self.pos
                if self.text[self.pos : self.pos + 1] == ",":
                    self.pos += 1
                return items

    def _read(self, raw: str) -> Any:
        if self.flag == "--set-string":
            return raw
        if self.flag == "--set-file":
            return self._file(raw)
        return typed_value(raw)

    def _file(self, path: str) -> str:
        assert self.read_file is not None, "--set-file needs a reader"
        try:
            return self.read_file(path)
        except OSError as exc:
            reason = exc.strerror or str(exc)
        except UnicodeDecodeError:
            reason = "not UTF-8 text"
        hint = "the path is relative to the current directory"
        raise _Invalid(f"cannot read '{path}': {reason}", hint=hint)

    def _json_value(self) -> Any:
        """helm's JSON value: blanks up to a comma or the end mean null; else one JSON document."""
        self.value_end = self.pos
        if self._skip_blanks_and_comma():
            return None
        try:
            value, end = _JSON.raw_decode(self.text, self.pos)
        except ValueError as exc:
            raise _Invalid(f"invalid JSON: {exc}") from None
        self.pos = self.value_end = end
        self._skip_blanks_and_comma()
        return value

    def _skip_blanks_and_comma(self) -> bool:
        """helm's emptyVal: true at a comma (consumed) or the end; stops before anything else."""
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == ",":
                self.pos += 1
                return True
            if not char.isspace():
                return False
            self.pos += 1
        return True
