"""deployer.lock.yaml as a file (deployer/chartlock.py says what it means): read, checked, written.

Every run that uses ranges reads it, so reading is fast: the file deployer writes has one field a
line, each value JSON-quoted, and is read line by line (about 20 ms for 1,000 releases, where a
YAML loader keeping marks took 0.9 s). A file edited by hand into anything else is read with the
YAML loader, and a mistake in it is reported with its file:line either way.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployer.errors import SpecError, SpecErrors
from deployer.project import ChartRef
from deployer.yamlsource import Document, load_file

LOCK_FILE = "deployer.lock.yaml"
LOCK_VERSION = 1
_HEADER = (
    "# Written by `deployer lock`: the exact chart each release gets, per environment. Commit it.\n"
    "# Every other verb uses these versions and checks these digests; `deployer lock --check` (CI)\n"
    "# fails when a range has moved on. Do not edit by hand: run `deployer lock` after a version change.\n"
)


@dataclass(frozen=True)
class Entry:
    environments: tuple[str, ...]
    chart: str  # <repository>/<chart>, or the oci:// URL
    repository: str | None  # the repository URL of a <repository>/<chart>
    range: str | None  # the range it resolved (None: an exact version)
    devel: bool
    version: str
    digest: str  # sha256:<hex> of the chart archive
    oci_digest: str | None = None  # the OCI manifest's digest

    def same_chart(self, ref: ChartRef) -> bool:
        if ref.kind == "oci":
            return self.chart == ref.ref and self.repository is None
        return self.chart == ref.ref and self.repository == (ref.repository_url or "").rstrip("/")

    def same_chart_as(self, other: Entry) -> bool:
        return (self.chart, self.repository) == (other.chart, other.repository)

    def resolution(self) -> tuple[Any, ...]:
        return (
            self.chart,
            self.repository,
            self.range,
            self.devel,
            self.version,
            self.digest,
            self.oci_digest,
        )


@dataclass
class LockFile:
    path: Path
    releases: dict[str, list[Entry]]

    def entry(self, key: str, environment: str) -> Entry | None:
        return next((e for e in self.releases.get(key, []) if environment in e.environments), None)


def load_lock(path: Path) -> LockFile | None:
    """The lock file, checked (None when there is none); bad content is an error with file:line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        text = ""  # load_file reports it
    data = _read_fast(text) if text else None
    if data is not None:
        try:
            return _checked(path, data, None)
        except _NeedMarks:
            pass
    doc = load_file(path)
    return _checked(path, doc.data if doc.data is not None else {}, doc)


class _NeedMarks(Exception):
    """The fast reading found a problem: read again with marks, to say where it is."""


_LINE = re.compile(r'( *)(- )?("(?:[^"\\]|\\.)*"|[A-Za-z]+):(?: (.*))?')


def _read_fast(text: str) -> dict[str, Any] | None:
    """The data of a lock file in the exact shape `render` writes; None for any other text."""
    data: dict[str, Any] = {}
    releases: dict[str, Any] | None = None
    entries: list[dict[str, Any]] | None = None
    entry: dict[str, Any] | None = None
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = _LINE.fullmatch(line)
        if m is None:
            return None
        indent, dash, key, raw = len(m[1]), bool(m[2]), m[3], m[4]
        try:
            value = None if raw is None else _value(raw)
        except ValueError:
            return None
        if indent == 0 and not dash and key in {"lockVersion", "releases"} and key not in data:
            data[key] = value
            if key == "releases" and value is None:
                data[key] = releases = {}
        elif indent == 2 and not dash and raw is None and releases is not None and key.startswith('"'):
            try:
                name = json.loads(key)
            except ValueError:
                return None
            if name in releases:
                return None
            entries = releases[name] = []
        elif indent == 4 and dash and entries is not None and not key.startswith('"'):
            entry = {key: value}
            entries.append(entry)
        elif indent == 6 and not dash and entry is not None and not key.startswith('"') and key not in entry:
            entry[key] = value
        else:
            return None
    return data


def _value(raw: str) -> Any:
    if len(raw) > 1 and raw[0] == raw[-1] == '"' and "\\" not in raw and '"' not in raw[1:-1]:
        return raw[1:-1]  # most values: a plain quoted string (json.loads costs 20 µs a line)
    return json.loads(raw)


def _checked(path: Path, data: Any, doc: Document | None) -> LockFile:
    errors: list[SpecError] = []
    releases: dict[str, list[Entry]] = {}
    if not isinstance(data, dict) or not isinstance(data.get("releases", {}), dict):
        raise _bad(doc, (), "a lock file maps 'releases' to their entries")
    if data.get("lockVersion", LOCK_VERSION) != LOCK_VERSION:
        raise _bad(doc, ("lockVersion",), f"lockVersion {data.get('lockVersion')!r} is not {LOCK_VERSION}")
    for key, entries in (data.get("releases") or {}).items():
        if not isinstance(entries, list):
            errors.append(_bad(doc, ("releases", key), f"release '{key}' must list its entries"))
            continue
        for j, raw in enumerate(entries):
            try:
                releases.setdefault(str(key), []).append(_entry(doc, ("releases", key, j), raw))
            except SpecError as exc:
                errors.append(exc)
    SpecErrors.raise_if_any(errors)
    return LockFile(path, releases)


def _entry(doc: Document | None, at: tuple[str | int, ...], raw: Any) -> Entry:
    if not isinstance(raw, dict):
        raise _bad(doc, at, "an entry is a mapping of environments, chart, version and digest")
    unknown = sorted(
        set(raw) - {"environments", "chart", "repository", "range", "devel", "version", "digest", "ociDigest"}
    )
    if unknown:
        raise _bad(doc, (*at, unknown[0]), f"unknown key '{unknown[0]}'", key=True)
    for name in ("chart", "version", "digest"):
        if not isinstance(raw.get(name), str) or not raw[name]:
            raise _bad(doc, (*at, name), f"'{name}' must be a non-empty string")
    envs = raw.get("environments")
    if not isinstance(envs, list) or not envs or not all(isinstance(e, str) for e in envs):
        raise _bad(doc, (*at, "environments"), "'environments' must list environment names")
    if not str(raw["digest"]).startswith("sha256:"):
        raise _bad(doc, (*at, "digest"), "'digest' must be sha256:<hex>")
    for name in ("repository", "range", "ociDigest"):
        if raw.get(name) is not None and not isinstance(raw[name], str):
            raise _bad(doc, (*at, name), f"'{name}' must be a string")
    return Entry(
        environments=tuple(envs),
        chart=raw["chart"],
        repository=raw.get("repository"),
        range=raw.get("range"),
        devel=bool(raw.get("devel", False)),
        version=raw["version"],
        digest=raw["digest"],
        oci_digest=raw.get("ociDigest"),
    )


def _bad(doc: Document | None, at: tuple[str | int, ...], message: str, *, key: bool = False) -> SpecError:
    if doc is None:
        raise _NeedMarks
    return SpecError(
        f"{message} in the lock file",
        mark=doc.mark(at, key=key),
        hint="run `deployer lock` to write it again (or restore it from Git)",
    )


_SURROGATES = re.compile(r"\\ud([89ab][0-9a-f]{2})\\ud([c-f][0-9a-f]{2})")


def _quote(text: str) -> str:
    """A double-quoted scalar that YAML and JSON read alike; beyond the BMP, where JSON writes a
    surrogate pair that PyYAML would keep as two characters, YAML's \\U escape (then only the
    YAML reader reads the file)."""

    def astral(m: re.Match[str]) -> str:
        code = 0x10000 + ((int("d" + m[1], 16) - 0xD800) << 10) + (int("d" + m[2], 16) - 0xDC00)
        return f"\\U{code:08x}"

    return _SURROGATES.sub(astral, json.dumps(text))


def render(lock: LockFile) -> str:
    """The lock file's text: sorted, one line per field, every string quoted (a version `1.10` must
    never read back as a number)."""
    keys = sorted(k for k, entries in lock.releases.items() if entries)
    lines = [_HEADER.rstrip("\n"), f"lockVersion: {LOCK_VERSION}", "releases:" if keys else "releases: {}"]
    for key in keys:
        lines.append(f"  {_quote(key)}:")
        for e in sorted(lock.releases[key], key=lambda e: e.environments):
            lines.append(f"    - environments: [{', '.join(_quote(n) for n in e.environments)}]")
            lines.append(f"      chart: {_quote(e.chart)}")
            if e.repository is not None:
                lines.append(f"      repository: {_quote(e.repository)}")
            if e.range is not None:
                lines.append(f"      range: {_quote(e.range)}")
            if e.devel:
                lines.append("      devel: true")
            lines.append(f"      version: {_quote(e.version)}")
            lines.append(f"      digest: {_quote(e.digest)}")
            if e.oci_digest is not None:
                lines.append(f"      ociDigest: {_quote(e.oci_digest)}")
    return "\n".join(lines) + "\n"


def write(lock: LockFile) -> bool:
    """Write the lock file atomically; False when its text is unchanged (then it is not touched)."""
    text = render(lock)
    try:
        if lock.path.read_text(encoding="utf-8") == text:
            return False
    except FileNotFoundError:
        pass
    partial = lock.path.with_name(f".{lock.path.name}.{os.getpid()}.tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, lock.path)
    return True
