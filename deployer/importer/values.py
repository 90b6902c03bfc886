"""A helmfile release's values, entry by entry, as helm would layer them; and the overlay that takes
the values shared by every environment to one environment's values.

helmfile passes a release's `values:` files and inline maps, then its `secrets:` files, as helm -f
files, then `set:` as --set/--set-file and `setString:` as --set-string (state.go
namespaceAndValuesFlags). Pure but for reading the files the entries name.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from deployer.errors import DeployerError
from deployer.merge import merge_values
from deployer.setvalues import Assignment, parse_flags

Kind = Literal["file", "inline", "secret"]


@dataclass(frozen=True)
class Entry:
    kind: Kind
    file: Path | None = None  # absolute, for file and secret
    inline: Any = None  # the map, for inline

    def same(self, other: Entry) -> bool:
        return self.kind == other.kind and self.file == other.file and self.inline == other.inline


class EntryProblem(DeployerError):
    """An entry that cannot be read (missing file, not a mapping); the caller reports it."""


def read_values_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EntryProblem("file not found") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise EntryProblem(f"not readable YAML: {' '.join(str(exc).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise EntryProblem("not a mapping of values")
    return data


def duplicate_keys(path: Path) -> list[tuple[int, str]]:
    """(line, key) of each key a mapping of the file repeats (helm keeps the last occurrence)."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    out: list[tuple[int, str]] = []
    todo = [root] if root is not None else []
    while todo:
        node = todo.pop()
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        out.append((key.start_mark.line + 1, key.value))
                    seen.add(key.value)
                todo.append(value)
        elif isinstance(node, yaml.SequenceNode):
            todo += node.value
    return sorted(out)


def is_sops(data: Mapping[str, Any]) -> bool:
    return isinstance(data.get("sops"), dict)


def content(entry: Entry) -> dict[str, Any] | None:
    """The values an entry holds; None for an encrypted file (read by deployer at run time)."""
    if entry.kind == "inline":
        return dict(entry.inline)
    assert entry.file is not None
    data = read_values_file(entry.file)
    return None if entry.kind == "secret" or is_sops(data) else data


def merged(entries: Sequence[Entry]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for entry in entries:
        data = content(entry)
        if data is not None:
            out = merge_values(out, data)
    return out


def go_string(value: Any) -> str:
    """A YAML scalar as helmfile's `value: string` field holds it (Go's yaml decodes the text)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _escape(text: str) -> str:
    """helmfile's escape() for --set keys and values: { } and , get a backslash."""
    return text.replace("{", "\\{").replace("}", "\\}").replace(",", "\\,")


def set_flags(set_: Sequence[Any], set_string: Sequence[Any]) -> dict[str, list[str]]:
    """helmfile's setFlags and setStringFlags: `set` and `setString` entries as helm flag texts."""
    flags: dict[str, list[str]] = {}
    for flag, items in (("--set", set_), ("--set-string", set_string)):
        for item in items:
            if not isinstance(item, Mapping):
                raise EntryProblem("each entry needs name and value, file or values")
            name = _escape(go_string(item.get("name")))
            value = go_string(item.get("value"))
            if value != "":
                flags.setdefault(flag, []).append(f"{name}={_escape(value)}")
            elif item.get("file") and flag == "--set":
                flags.setdefault("--set-file", []).append(f"{name}={item['file']}")
            elif item.get("values"):
                listed = ",".join(_escape(go_string(v)) for v in item["values"])
                flags.setdefault(flag, []).append(f"{name}={{{listed}}}")
    return flags


def set_entry(below: Mapping[str, Any], flags: Mapping[str, Sequence[str]], base_dir: Path) -> Entry | None:
    """The `set`/`setString` flags as one inline map that, merged over `below`, gives what helm gets
    from the flags applied onto `below`."""
    if not flags:
        return None

    def read_file(path: str) -> str:
        try:
            return (base_dir / path).read_text(encoding="utf-8")
        except OSError as exc:
            raise EntryProblem(f"set file {path}: {exc.strerror}") from None

    try:
        assignments = parse_flags(flags, read_file)
    except DeployerError as exc:
        raise EntryProblem(exc.message) from None
    after: Any = copy.deepcopy(dict(below))
    for item in assignments:
        after = _put(after, item.path, item.value) if item.path else merge_values(after, item.value)
    inline: dict[str, Any] = {}
    for item in assignments:
        keys = _leading_keys(item)
        if not keys:
            inline = merge_values(inline, item.value)
            continue
        node: Any = after
        for key in keys:
            node = node[key]
        _put(inline, list(keys), copy.deepcopy(node))
    if merge_values(below, inline) != after:  # a shape the leading-keys form cannot say: say it all
        inline = diff(after, below)
    return Entry("inline", inline=inline)


def _leading_keys(item: Assignment) -> tuple[str, ...]:
    keys: list[str] = []
    for key in item.path:
        if isinstance(key, int):
            break
        keys.append(key)
    return tuple(keys)


def _put(node: Any, path: Sequence[str | int], value: Any) -> Any:
    """helm's strvals assignment of `value` at `path` into `node` (maps and lists made as needed)."""
    if not path:
        return value
    key, rest = path[0], path[1:]
    if isinstance(key, int):
        items = list(node) if isinstance(node, list) else []
        items += [None] * (key + 1 - len(items))
        items[key] = _put(items[key], rest, value)
        return items
    out = node if isinstance(node, dict) else {}
    out[key] = _put(out.get(key), rest, value)
    return out


def diff(target: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    """The smallest overlay O (Helm's merge: maps merge, the rest replaces, null stays) such that
    merge(base, O) == target."""
    out: dict[str, Any] = {}
    for key in base:
        if key not in target:
            out[key] = None
    for key, value in target.items():
        if key not in base:
            out[key] = copy.deepcopy(value)
        elif isinstance(value, Mapping) and isinstance(base[key], Mapping):
            sub = diff(value, base[key])
            if sub:
                out[key] = sub
        elif value != base[key] or type(value) is not type(base[key]):
            out[key] = copy.deepcopy(value)
    return out


def common_entries(lists: Sequence[Sequence[Entry]]) -> list[Entry]:
    """The entries every list has, in the order of the first."""
    first, *others = lists
    return [e for e in first if all(any(e.same(o) for o in other) for other in others)]
