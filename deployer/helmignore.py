"""A chart directory's `.helmignore`, read as helm reads it (helm's pkg/ignore, used by its
directory loader). Pure, but for `chart_files`, which walks a directory.

helm's rules, kept exactly (including the odd ones):
- one pattern per line, surrounding blanks trimmed; blank lines and `#` comments skipped; a
  pattern with `**` is refused (helm then refuses to load the chart: here it is skipped);
- a trailing `/` matches directories only; a leading `!` negates; a leading `/` anchors the
  pattern at the chart's root, as does any `/` inside it; a pattern without `/` matches the
  file's (or directory's) base name, at any depth;
- patterns are Go's filepath.Match globs: `*` and `?` never match `/`, `[a-z]` and `[^a-z]`
  classes (which can), `\\` escapes;
- rules are tried in order and the first match ignores; a negated rule that does *not* match
  (or a negated directory rule met by a file) ignores too, and one that matches goes on to the
  next rule;
- an ignored directory is skipped whole; `templates/.?*` (dot files in templates/) is always
  added after the file's rules.
Only a chart directory is filtered: `helm package` applied .helmignore when it made an archive,
and helm loads an archive's files as they are (.helmignore included).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FILE_NAME = ".helmignore"
DEFAULTS = ("templates/.?*",)


@dataclass(frozen=True)
class Pattern:
    raw: str
    regex: re.Pattern[str]
    negate: bool
    must_dir: bool
    base_name: bool  # no `/` in it: matched against the base name


class BadPattern(ValueError):
    """A pattern Go's filepath.Match refuses (helm refuses the chart)."""


def parse(text: str) -> tuple[Pattern, ...]:
    """The rules of a .helmignore text, followed by helm's defaults."""
    patterns = []
    for line in [*text.splitlines(), *DEFAULTS]:
        try:
            found = parse_rule(line)
        except BadPattern:
            continue
        if found is not None:
            patterns.append(found)
    return tuple(patterns)


def parse_rule(line: str) -> Pattern | None:
    rule = line.strip()
    if not rule or rule.startswith("#"):
        return None
    if "**" in rule:
        raise BadPattern(f"{rule}: double-star (**) syntax is not supported")
    glob_regex(rule)  # helm checks the whole rule compiles, `!` and `/` included
    raw, negate = rule, rule.startswith("!")
    if negate:
        rule = rule[1:]
    must_dir = rule.endswith("/")
    if must_dir:
        rule = rule[:-1]
    base_name = "/" not in rule
    return Pattern(raw, glob_regex(rule.removeprefix("/")), negate, must_dir, base_name)


def ignored(patterns: tuple[Pattern, ...], path: str, is_dir: bool) -> bool:
    """Whether helm's loader leaves out `path` (relative to the chart, `/`-separated)."""
    if path in ("", ".", "./"):
        return False
    for p in patterns:
        name = _base(path) if p.base_name else path
        if p.negate:
            if p.must_dir and not is_dir:
                return True
            if not p.regex.fullmatch(name):
                return True
            continue
        if p.must_dir and not is_dir:
            continue
        if p.regex.fullmatch(name):
            return True
    return False


def _base(path: str) -> str:
    """Go's filepath.Base: the last element, trailing slashes dropped."""
    stripped = path.rstrip("/")
    return stripped.rsplit("/", 1)[-1] if stripped else "/"


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Go's filepath.Match pattern as a regular expression (to use with fullmatch)."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            if i + 1 >= n:
                raise BadPattern(f"{pattern}: trailing backslash")
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            i, text = _char_class(pattern, i + 1)
            out.append(text)
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _char_class(pattern: str, i: int) -> tuple[int, str]:
    """A `[...]` class starting after its `[`: (index past its `]`, the regex class). As in Go, a
    class may match `/`, and a range whose ends are reversed matches nothing."""
    n = len(pattern)
    negated = i < n and pattern[i] == "^"
    if negated:
        i += 1
    ranges: list[str] = []
    count = 0
    while True:
        if i < n and pattern[i] == "]" and count > 0:
            i += 1
            break
        lo, i = _class_char(pattern, i)
        hi = lo
        if pattern[i] == "-":
            hi, i = _class_char(pattern, i + 1)
        if lo <= hi:
            ranges.append(re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}")
        count += 1
    body = "".join(ranges)
    if not body:
        return i, "." if negated else "(?!)"
    return i, f"[^{body}]" if negated else f"[{body}]"


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    """One character of a class (Go's getEsc): `-` and `]` must be escaped, and the class must go on."""
    n = len(pattern)
    if i >= n or pattern[i] in "-]":
        raise BadPattern(f"{pattern}: bad character class")
    if pattern[i] == "\\":
        i += 1
        if i >= n:
            raise BadPattern(f"{pattern}: trailing backslash")
    if i + 1 >= n:
        raise BadPattern(f"{pattern}: unterminated character class")
    return pattern[i], i + 1


def chart_files(chart: Path) -> Iterator[Path]:
    """The files helm loads from a chart directory (its .helmignore honoured), sorted by path.

    As helm's walk, symbolic links are followed and an ignored directory is not entered."""
    ignore_file = chart / FILE_NAME
    patterns = parse(ignore_file.read_text(errors="replace")) if ignore_file.is_file() else parse("")
    found: list[Path] = []
    for root, dirs, files in os.walk(chart, followlinks=True):
        base = Path(root)
        rel = base.relative_to(chart).as_posix()
        prefix = "" if rel == "." else f"{rel}/"
        dirs[:] = sorted(d for d in dirs if not ignored(patterns, prefix + d, is_dir=True))
        for name in files:
            if not ignored(patterns, prefix + name, is_dir=False):
                found.append(base / name)
    return iter(sorted(found, key=lambda p: p.relative_to(chart).as_posix()))
