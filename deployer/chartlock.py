"""The chart lock file (deployer.lock.yaml): the exact version and archive digest each repository or
OCI release gets, per environment, written by `deployer lock` and read by every other verb.

Reading it is the only cost a run pays for ranges: no repository index, no registry. A release whose
`version:` is a range (or absent) takes its locked version; a range with no entry, or one its entry no
longer satisfies, is an error naming the release, its version's file:line and `deployer lock`. An
exact version works with or without an entry; with one, its digest is checked at pull time
(deployer/charts.py), as every locked chart's is.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from deployer.errors import Mark, SpecError, SpecErrors
from deployer.project import ChartRef, DesiredRelease, Project
from deployer.semver import Constraints, SemverError, Version, is_exact
from deployer.yamlsource import Document, PathKey, display_path, load_file

LOCK_FILE = "deployer.lock.yaml"
LOCK_VERSION = 1
ANY = "*"  # the range of a release with no `version:`
_RANGE_HINT = (
    "write an exact version (1.2.3) or a range as helm reads it: ~1.2, ^1.2.3, >=1.0 <2.0, 1.2.x, "
    "1.0 - 1.4, a || b"
)
_HEADER = (
    "# Written by `deployer lock`: the exact chart each release gets, per environment. Commit it.\n"
    "# Every other verb uses these versions and checks these digests; `deployer lock --check` (CI)\n"
    "# fails when a range has moved on. Do not edit by hand: run `deployer lock` after a version change.\n"
)


def range_error(text: str) -> tuple[str, str] | None:
    """(problem, hint) when `text` is neither an exact version nor a range helm reads."""
    if is_exact(text):
        return None
    try:
        Constraints.parse(text)
    except SemverError as exc:
        return f"version '{text}' is not a version or a range helm reads ({exc})", _RANGE_HINT
    return None


@dataclass(frozen=True)
class Request:
    """What the spec asks of one release's chart in one environment."""

    key: str  # namespace/name
    environment: str
    chart: ChartRef
    text: str | None  # `version:` as written (None: absent, the newest)
    devel: bool
    mark: Mark  # where the version was written (or the release, when absent)

    @property
    def exact(self) -> bool:
        return self.text is not None and is_exact(self.text)

    @property
    def range(self) -> str:
        return ANY if self.text is None else self.text.strip()

    def satisfied_by(self, version: str) -> bool:
        if self.exact:
            return version == self.text
        try:
            return Constraints.parse(self.range).check(Version.parse(version), include_prerelease=self.devel)
        except SemverError:
            return False


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


def lock_path(project: Project) -> Path:
    return project.root / LOCK_FILE


def requests(project: Project, env_name: str, releases: Sequence[DesiredRelease]) -> list[Request]:
    """The repository and OCI releases of an environment (resolve's list, in spec order) that are
    installed there, with the version each asks for."""
    from deployer.desired import override_of

    env = project.environment(env_name)
    defaults = project.spec.defaults
    out: list[Request] = []
    for i, (rel, desired) in enumerate(zip(project.spec.releases, releases, strict=True)):
        if desired.chart.kind == "local" or not desired.installed:
            continue
        override = override_of(project, env, rel, desired.key)
        at: PathKey
        if override is not None and override.version:
            name = next(n for n in (rel.name, desired.key) if env.releases.get(n) is override)
            text, at = override.version, ("environments", env_name, "releases", name, "version")
        else:
            text, at = rel.version, ("releases", i, "version") if rel.version else ("releases", i, "name")
        devel = next((d for d in (rel.devel, defaults.devel) if d is not None), False)
        out.append(Request(desired.key, env_name, desired.chart, text, devel, project.doc.mark(at)))
    return out


def load_lock(path: Path) -> LockFile | None:
    """The lock file, checked (None when there is none); bad content is an error with file:line."""
    if not path.exists():
        return None
    doc = load_file(path)
    errors: list[SpecError] = []
    releases: dict[str, list[Entry]] = {}
    data = doc.data if doc.data is not None else {}
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


def _entry(doc: Document, at: tuple[str | int, ...], raw: Any) -> Entry:
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


def _bad(doc: Document, at: tuple[str | int, ...], message: str, *, key: bool = False) -> SpecError:
    return SpecError(
        f"{message} in the lock file",
        mark=doc.mark(at, key=key),
        hint="run `deployer lock` to write it again (or restore it from Git)",
    )


def pin(project: Project, env_name: str, releases: list[DesiredRelease]) -> list[DesiredRelease]:
    """The releases with each repository or OCI chart at its locked version and digest."""
    wanted = requests(project, env_name, releases)
    if not wanted:
        return releases
    path = lock_path(project)
    lock = load_lock(path)
    shown = display_path(path)
    pinned: dict[str, ChartRef] = {}
    errors: list[SpecError] = []
    for req in wanted:
        entry = lock.entry(req.key, env_name) if lock else None
        if entry is not None and not entry.same_chart(req.chart):
            entry = None
        if req.exact:
            if entry is not None and entry.version == req.text:
                pinned[req.key] = replace(req.chart, digest=entry.digest)
            continue
        asked = (
            f"chart {req.chart.ref} version '{req.range}'"
            if req.text is not None
            else f"the newest version of chart {req.chart.ref} (it has no version:)"
        )
        what = f"release '{req.key}' asks for {asked}"
        where = f"in environment '{env_name}'"
        if entry is None:
            errors.append(
                SpecError(
                    f"{what}, which {shown} does not lock {where}",
                    mark=req.mark,
                    hint=f"run `deployer lock -e {env_name}` (or `deployer lock`) and commit {shown}",
                )
            )
        elif not req.satisfied_by(entry.version):
            errors.append(
                SpecError(
                    f"{what}, but {shown} locks {entry.version} {where}, which that range does not match",
                    mark=req.mark,
                    hint=f"run `deployer lock -e {env_name}` (or `deployer lock`) and commit {shown}",
                )
            )
        else:
            pinned[req.key] = replace(req.chart, version=entry.version, digest=entry.digest)
    SpecErrors.raise_if_any(errors)
    return [replace(r, chart=pinned[r.key]) if r.key in pinned else r for r in releases]


def render(lock: LockFile) -> str:
    """The lock file's text: sorted, one line per field, every string quoted (a version `1.10` must
    never read back as a number)."""
    keys = sorted(k for k, entries in lock.releases.items() if entries)
    lines = [_HEADER.rstrip("\n"), f"lockVersion: {LOCK_VERSION}", "releases:" if keys else "releases: {}"]
    for key in keys:
        lines.append(f"  {json.dumps(key)}:")
        for e in sorted(lock.releases[key], key=lambda e: e.environments):
            lines.append(f"    - environments: [{', '.join(json.dumps(n) for n in e.environments)}]")
            lines.append(f"      chart: {json.dumps(e.chart)}")
            if e.repository is not None:
                lines.append(f"      repository: {json.dumps(e.repository)}")
            if e.range is not None:
                lines.append(f"      range: {json.dumps(e.range)}")
            if e.devel:
                lines.append("      devel: true")
            lines.append(f"      version: {json.dumps(e.version)}")
            lines.append(f"      digest: {json.dumps(e.digest)}")
            if e.oci_digest is not None:
                lines.append(f"      ociDigest: {json.dumps(e.oci_digest)}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Resolved:
    """One request resolved: the entry it gets (with only its own environment)."""

    request: Request
    entry: Entry


def merged(
    old: LockFile | None, path: Path, resolved: Iterable[Resolved], environments: Iterable[str]
) -> LockFile:
    """The lock after resolving `environments`: their entries replaced by `resolved`, every other
    environment's kept; environments of a release that resolve the same share one entry."""
    envs = set(environments)
    per_env: dict[tuple[str, str], Entry] = {}
    for key, entries in (old.releases if old else {}).items():
        for e in entries:
            for env in e.environments:
                if env not in envs:
                    per_env[key, env] = e
    for r in resolved:
        per_env[r.request.key, r.request.environment] = r.entry
    groups: dict[tuple[str, tuple[Any, ...]], list[str]] = {}
    firsts: dict[tuple[str, tuple[Any, ...]], Entry] = {}
    for (key, env), e in per_env.items():
        group = (key, e.resolution())
        groups.setdefault(group, []).append(env)
        firsts.setdefault(group, e)
    releases: dict[str, list[Entry]] = {}
    for group, names in groups.items():
        releases.setdefault(group[0], []).append(replace(firsts[group], environments=tuple(sorted(names))))
    return LockFile(path, {k: sorted(v, key=lambda e: e.environments) for k, v in sorted(releases.items())})


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


def stale(
    old: LockFile | None,
    new: LockFile,
    environments: Iterable[str],
    requested: Mapping[tuple[str, str], Request],
) -> list[str]:
    """Why the lock on disk is not what `deployer lock` would write for `environments`, one line each
    (empty: up to date)."""
    envs = sorted(set(environments))
    problems: list[str] = []
    for key in sorted({*(old.releases if old else {}), *new.releases}):
        for env in envs:
            before = old.entry(key, env) if old else None
            after = new.entry(key, env)
            where = f"{key} ({env})"
            if after is None and before is not None:
                problems.append(f"{where}: locked, but no longer a repository release of this environment")
            elif after is None:
                continue
            elif before is None:
                problems.append(f"{where}: not locked (wants {after.chart} {after.range or after.version})")
            elif not before.same_chart_as(after):
                problems.append(f"{where}: locked chart {before.chart}, the spec now has {after.chart}")
            elif (before.range, before.devel) != (after.range, after.devel):
                req = requested[key, env]
                fit = "still matches" if req.satisfied_by(before.version) else "does not match"
                problems.append(
                    f"{where}: locked for {_asked(before)}, the spec now asks {_asked(after)} "
                    f"(which {fit} the locked {before.version})"
                )
            elif before.version != after.version:
                newest = f"{after.version} is the newest match of {_asked(after)}"
                problems.append(f"{where}: {newest} (locked: {before.version})")
    return problems


def _asked(e: Entry) -> str:
    text = f"'{e.range}'" if e.range is not None else f"exact version {e.version}"
    return text + (" with devel" if e.devel else "")
