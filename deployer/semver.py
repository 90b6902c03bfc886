"""Semantic versions and version ranges exactly as helm reads them.

Helm 3.22 and 4.3 both resolve `--version` ranges with Masterminds/semver v3.5.0
(github.com/Masterminds/semver, constraints.go and version.go). This module reproduces its rules,
regular expressions included, so a range means in deployer.yaml what it means to helm:
`~1.2` = >=1.2.0 <1.3.0, `^1.2` = >=1.2.0 <2.0.0 (`^0.2` = <0.3.0), `1.2.x` and `1.2` = the 1.2
patches, `*` = anything, `a - b` = >=a <=b, `,` or space = and, `||` = or. A pre-release (1.3.0-rc.1)
matches only an and-group that itself names a pre-release, unless pre-releases are included
(Masterminds' IncludePrerelease; deployer's `devel: true`). python-semver and packaging differ from
it in all of these (no `x`, no hyphen ranges, other caret and pre-release rules).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache, total_ordering

MAX_VERSION_LEN = 256
MAX_CONSTRAINT_LEN = 512
MAX_CONSTRAINT_GROUPS = 32
_UINT64_MAX = 2**64 - 1

# Go's \s (RE2) is [\t\n\f\r ]; Python's would also take \v and Unicode spaces.
_S = r"[\t\n\f\r ]"
_LOOSE = (
    r"v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?"
    r"(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
    r"(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
)
_LOOSE_RE = re.compile(_LOOSE, re.ASCII)
# The constraint version: `|` inside the classes is Masterminds' own (a literal bar), kept as it is.
_CV = (
    r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?"
    r"(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
    r"(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
)
# The empty alternative after `=` is Masterminds' too: a bare version is an equality (or a range).
_OPS = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^"
_CONSTRAINT_RE = re.compile(rf"{_S}*({_OPS}){_S}*({_CV}){_S}*", re.ASCII)
_RANGE_RE = re.compile(rf"{_S}*({_CV}){_S}+-{_S}+({_CV}){_S}*", re.ASCII)
_FIND_RE = re.compile(rf"({_OPS}){_S}*({_CV})", re.ASCII)
_VALID_RE = re.compile(
    rf"({_S}*({_OPS}){_S}*({_CV}){_S}*)((?:{_S}+|,{_S}*)({_OPS}){_S}*({_CV}){_S}*)*", re.ASCII
)
_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789")


class SemverError(ValueError):
    """A version or range that does not parse (the text says why, as Masterminds does)."""


def _uint(text: str) -> int | None:
    """Go's strconv.ParseUint(text, 10, 64): digits only, at most 2^64-1."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value <= _UINT64_MAX else None


def _check_prerelease(pre: str) -> None:
    for part in pre.split("."):
        if not part:
            raise SemverError("invalid prerelease string")
        if part.isascii() and part.isdigit():
            if len(part) > 1 and part[0] == "0":
                raise SemverError("version segment starts with 0")
        elif not set(part) <= _ALLOWED:
            raise SemverError("invalid prerelease string")


def _check_metadata(meta: str) -> None:
    for part in meta.split("."):
        if not part or not set(part) <= _ALLOWED:
            raise SemverError("invalid metadata string")


@total_ordering
@dataclass(frozen=True, eq=False)
class Version:
    major: int
    minor: int
    patch: int
    pre: str = ""
    metadata: str = ""
    original: str = ""

    @classmethod
    def parse(cls, text: str) -> Version:
        """Masterminds' NewVersion (coercing): `v` prefix, `1` and `1.2`, leading zeros allowed."""
        if len(text) > MAX_VERSION_LEN:
            raise SemverError(f"version string is too long (max {MAX_VERSION_LEN} bytes)")
        m = _LOOSE_RE.fullmatch(text)
        if m is None:
            raise SemverError("invalid semantic version")
        numbers = [_uint(m[1]), _uint((m[2] or "0").lstrip(".")), _uint((m[3] or "0").lstrip("."))]
        if any(n is None for n in numbers):
            raise SemverError("error parsing version segment")
        pre, meta = m[5] or "", m[8] or ""
        if pre:
            _check_prerelease(pre)
        if meta:
            _check_metadata(meta)
        major, minor, patch = (n for n in numbers if n is not None)
        return cls(major, minor, patch, pre, meta, text)

    @classmethod
    def parse_strict(cls, text: str) -> Version:
        """Masterminds' StrictNewVersion: exactly MAJOR.MINOR.PATCH[-pre][+meta], no leading zeros."""
        if not text:
            raise SemverError("version string empty")
        if len(text) > MAX_VERSION_LEN:
            raise SemverError(f"version string is too long (max {MAX_VERSION_LEN} bytes)")
        parts = text.split(".", 2)
        if len(parts) != 3:
            raise SemverError("invalid semantic version")
        meta = pre = ""
        if "+" in parts[2]:
            parts[2], meta = parts[2].split("+", 1)
            _check_metadata(meta)
        if "-" in parts[2]:
            parts[2], pre = parts[2].split("-", 1)
            _check_prerelease(pre)
        for part in parts:
            if not all(c in "0123456789" for c in part):
                raise SemverError("invalid characters in version")
            if len(part) > 1 and part[0] == "0":
                raise SemverError("version segment starts with 0")
        numbers = [_uint(p) for p in parts]
        if any(n is None for n in numbers):
            raise SemverError("error parsing version segment")
        major, minor, patch = (n for n in numbers if n is not None)
        return cls(major, minor, patch, pre, meta, text)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.pre:
            text += f"-{self.pre}"
        if self.metadata:
            text += f"+{self.metadata}"
        return text

    def compare(self, other: Version) -> int:
        """-1, 0 or 1 by precedence: build metadata is ignored, a pre-release is below its release."""
        for a, b in ((self.major, other.major), (self.minor, other.minor), (self.patch, other.patch)):
            if a != b:
                return -1 if a < b else 1
        if not self.pre and not other.pre:
            return 0
        if not self.pre:
            return 1
        if not other.pre:
            return -1
        return _compare_prerelease(self.pre, other.pre)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.compare(other) == 0

    def __lt__(self, other: Version) -> bool:
        return self.compare(other) < 0

    def __hash__(self) -> int:
        return hash((self.major, self.minor, self.patch, self.pre))


def _compare_prerelease(a: str, b: str) -> int:
    aparts, bparts = a.split("."), b.split(".")
    for i in range(max(len(aparts), len(bparts))):
        d = _compare_part(aparts[i] if i < len(aparts) else "", bparts[i] if i < len(bparts) else "")
        if d:
            return d
    return 0


def _compare_part(s: str, o: str) -> int:
    if s == o:
        return 0
    if not s:
        return -1
    if not o:
        return 1
    si, oi = _uint(s), _uint(o)
    if si is None and oi is None:
        return 1 if s > o else -1  # Go compares the bytes; ASCII here (validated)
    if oi is None:
        return -1  # numeric identifiers sort before alphanumeric ones
    if si is None:
        return 1
    return 1 if si > oi else -1


@dataclass(frozen=True)
class _Constraint:
    op: str
    con: Version
    dirty: bool
    minor_dirty: bool
    patch_dirty: bool

    def check(self, v: Version, include_pre: bool) -> bool:
        if v.pre and not include_pre:
            return False
        return _OPERATIONS[self.op](v, self)


def _is_x(text: str) -> bool:
    return text in {"x", "X", "*"}


def _parse_constraint(text: str) -> _Constraint:
    m = _CONSTRAINT_RE.fullmatch(text)
    if m is None:
        raise SemverError(f"improper constraint: {text!r}")
    op, ver = m[1], m[2]
    major, minor, patch, pre = m[3], m[4] or "", m[5] or "", m[6] or ""
    dirty = minor_dirty = patch_dirty = False
    if _is_x(major):
        ver, dirty = f"0.0.0{pre}", True
    elif _is_x(minor.removeprefix(".")) or not minor:
        ver, dirty, minor_dirty = f"{major}.0.0{pre}", True, True
    elif _is_x(patch.removeprefix(".")) or not patch:
        ver, dirty, patch_dirty = f"{major}{minor}.0{pre}", True, True
    try:
        con = Version.parse(ver)
    except SemverError:
        raise SemverError(f"improper constraint: {text.strip()!r}") from None
    return _Constraint(op, con, dirty, minor_dirty, patch_dirty)


def _not_equal(v: Version, c: _Constraint) -> bool:
    if c.dirty:
        if c.con.major != v.major:
            return True
        if c.con.minor != v.minor and not c.minor_dirty:
            return True
        if c.minor_dirty:
            return False
        if c.con.patch != v.patch and not c.patch_dirty:
            return True
        if c.patch_dirty:
            if v.pre or c.con.pre:
                return _compare_prerelease(v.pre, c.con.pre) != 0
            return False
    return v.compare(c.con) != 0


def _greater(v: Version, c: _Constraint) -> bool:
    if not c.dirty:
        return v.compare(c.con) == 1
    if v.major != c.con.major:
        return v.major > c.con.major
    if c.minor_dirty:
        return False
    if c.patch_dirty:
        return v.minor > c.con.minor
    return v.compare(c.con) == 1


def _less(v: Version, c: _Constraint) -> bool:
    return v.compare(c.con) < 0


def _greater_equal(v: Version, c: _Constraint) -> bool:
    return v.compare(c.con) >= 0


def _less_equal(v: Version, c: _Constraint) -> bool:
    if not c.dirty:
        return v.compare(c.con) <= 0
    if v.major > c.con.major:
        return False
    return not (v.major == c.con.major and v.minor > c.con.minor and not c.minor_dirty)


def _tilde(v: Version, c: _Constraint) -> bool:
    if v < c.con:
        return False
    if c.con.major == 0 and c.con.minor == 0 and c.con.patch == 0 and not c.minor_dirty and not c.patch_dirty:
        return True  # ~0.0.0 is >=0.0.0
    if v.major != c.con.major:
        return False
    return not (v.minor != c.con.minor and not c.minor_dirty)


def _tilde_or_equal(v: Version, c: _Constraint) -> bool:
    return _tilde(v, c) if c.dirty else v.compare(c.con) == 0


def _caret(v: Version, c: _Constraint) -> bool:
    if v < c.con:
        return False
    if c.con.major > 0 or c.minor_dirty:
        return v.major == c.con.major
    if v.major > 0:
        return False
    if c.con.minor > 0 or c.patch_dirty:
        return v.minor == c.con.minor
    if v.minor > 0:
        return False
    return c.con.patch == v.patch


_OPERATIONS: dict[str, Callable[[Version, _Constraint], bool]] = {
    "": _tilde_or_equal,
    "=": _tilde_or_equal,
    "!=": _not_equal,
    ">": _greater,
    "<": _less,
    ">=": _greater_equal,
    "=>": _greater_equal,
    "<=": _less_equal,
    "=<": _less_equal,
    "~": _tilde,
    "~>": _tilde,
    "^": _caret,
}


def _rewrite_ranges(text: str) -> str:
    out = text
    for m in _RANGE_RE.finditer(text):
        out = out.replace(m[0], f">= {m[1]}, <= {m[11]} ", 1)
    return out


@dataclass(frozen=True)
class Constraints:
    """A parsed range: or-groups of and-ed constraints."""

    text: str
    groups: tuple[tuple[_Constraint, ...], ...]
    group_has_pre: tuple[bool, ...]

    @classmethod
    def parse(cls, text: str) -> Constraints:
        return _parse_cached(text)

    def check(self, version: Version, *, include_prerelease: bool = False) -> bool:
        return any(
            all(c.check(version, include_prerelease or has_pre) for c in group)
            for group, has_pre in zip(self.groups, self.group_has_pre, strict=True)
        )

    def newest(self, versions: Iterable[Version], *, include_prerelease: bool = False) -> Version | None:
        matching = [v for v in versions if self.check(v, include_prerelease=include_prerelease)]
        return max(matching, key=sort_key, default=None)


@lru_cache(maxsize=1024)
def _parse_cached(text: str) -> Constraints:
    if len(text.encode()) > MAX_CONSTRAINT_LEN:
        raise SemverError(f"constraint string is too long (max {MAX_CONSTRAINT_LEN} bytes)")
    ors = _rewrite_ranges(text).split("||")
    if len(ors) > MAX_CONSTRAINT_GROUPS:
        raise SemverError(f"too many constraint groups (max {MAX_CONSTRAINT_GROUPS})")
    groups: list[tuple[_Constraint, ...]] = []
    has_pre: list[bool] = []
    for part in ors:
        if _VALID_RE.fullmatch(part) is None:
            raise SemverError(f"improper constraint: {part.strip()!r}")
        found = [m[0] for m in _FIND_RE.finditer(part)] or [part]
        parsed = tuple(_parse_constraint(s) for s in found)
        groups.append(parsed)
        has_pre.append(any(c.con.pre for c in parsed))
    return Constraints(text, tuple(groups), tuple(has_pre))


def sort_key(v: Version) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...], str]:
    """A total order consistent with Version.compare; ties (build metadata) by the original text."""
    pre = tuple((0, _uint(p) or 0, "") if _uint(p) is not None else (1, 0, p) for p in v.pre.split("."))
    return (v.major, v.minor, v.patch, 0 if v.pre else 1, pre if v.pre else (), v.original)


def is_exact(text: str) -> bool:
    """An exact version (all of MAJOR.MINOR.PATCH written, no operator, `x` or `||`): helm pulls
    exactly it. Anything else (`1.2`, `~1.2`, `1.2.x`, `>=1`) is a range."""
    m = _LOOSE_RE.fullmatch(text.strip())
    return m is not None and bool(m[2]) and bool(m[3])
