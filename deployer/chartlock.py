"""The chart lock file (deployer.lock.yaml): the exact version and archive digest each repository or
OCI release gets, per environment, written by `deployer lock` and read by every other verb.

Reading it is the only cost a run pays for ranges: no repository index, no registry. A release whose
`version:` is a range (or absent) takes its locked version; a range with no entry, or one its entry no
longer satisfies, is an error naming the release, its version's file:line and `deployer lock`. An
exact version works with or without an entry; with one, its digest is checked at pull time
(deployer/charts.py), as every locked chart's is.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from deployer.errors import Mark, SpecError, SpecErrors
from deployer.lockfile import LOCK_FILE, Entry, LockFile, load_lock
from deployer.project import ChartRef, DesiredRelease, Project
from deployer.semver import Constraints, SemverError, Version, is_exact
from deployer.yamlsource import PathKey, display_path

ANY = "*"  # the range of a release with no `version:`
_RANGE_HINT = (
    "write an exact version (1.2.3) or a range as helm reads it: ~1.2, ^1.2.3, >=1.0 <2.0, 1.2.x, "
    "1.0 - 1.4, a || b"
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
        return _satisfies(self.range, version, self.devel)


@lru_cache(maxsize=4096)
def _pinned(ref: ChartRef, version: str | None, digest: str) -> ChartRef:
    return replace(ref, version=version, digest=digest)  # one object per chart (releases share them)


@lru_cache(maxsize=4096)
def _satisfies(text: str, version: str, devel: bool) -> bool:
    try:
        return Constraints.parse(text).check(Version.parse(version), include_prerelease=devel)
    except SemverError:
        return False


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
                pinned[req.key] = _pinned(req.chart, req.chart.version, entry.digest)
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
            pinned[req.key] = _pinned(req.chart, entry.version, entry.digest)
    SpecErrors.raise_if_any(errors)
    return [_with_chart(r, pinned[r.key]) if r.key in pinned else r for r in releases]


def _with_chart(release: DesiredRelease, chart: ChartRef) -> DesiredRelease:
    # dataclasses.replace re-runs __init__ over every field: 50 ms at 1,000 releases, per run.
    pinned = copy.copy(release)
    object.__setattr__(pinned, "chart", chart)
    return pinned


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
            elif before.version != after.version and after.range is None:
                problems.append(f"{where}: the spec asks for {after.version}, locked: {before.version}")
            elif before.version != after.version:
                newest = f"{after.version} is the newest match of {_asked(after)}"
                problems.append(f"{where}: {newest} (locked: {before.version})")
    return problems


def _asked(e: Entry) -> str:
    text = f"'{e.range}'" if e.range is not None else f"exact version {e.version}"
    return text + (" with devel" if e.devel else "")
