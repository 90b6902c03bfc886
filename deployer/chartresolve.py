"""`deployer lock`'s resolution: each repository or OCI release's range (per environment) resolved
to the newest matching version, as helm resolves `--version`, and the chart archive's digest.

HTTP repositories: their index.yaml, refreshed through deployer's repository cache (repos.py); the
versions as helm's IndexFile.Get reads them (an index version equal to the text first, then the
newest that NewVersion parses and the range matches). OCI registries: the tag list
(deployer/oci.py), read as helm's registry client does (StrictNewVersion of each tag with `_` as
`+`). A version already locked keeps its digest (checked against the index's, when it has one);
a new one is pulled (into the chart cache the next run renders from) and hashed.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import yaml

from deployer.chartlock import Request, Resolved, requests
from deployer.charts import ChartStore
from deployer.errors import DeployerError, SpecError, SpecErrors
from deployer.lockfile import Entry, LockFile
from deployer.project import ChartRef, Project
from deployer.repos import credentials
from deployer.semver import Constraints, SemverError, Version, sort_key


@dataclass(frozen=True)
class Candidate:
    text: str  # the version as the repository spells it (what `helm pull --version` gets)
    version: Version
    digest: str | None  # sha256:<hex> the index records, if any


def environment_requests(project: Project, environments: Iterable[str]) -> list[Request]:
    from deployer.desired import resolve

    out: list[Request] = []
    for env in environments:
        out.extend(requests(project, env, resolve(project, env, decrypt=False, pin=False)))
    return out


async def resolve_all(
    project: Project,
    wanted: Sequence[Request],
    charts: ChartStore,
    old: LockFile | None,
    *,
    pull: bool,
    log: Callable[[str], None],
) -> list[Resolved]:
    """An entry per request. `pull=False` (lock --check) pulls nothing: a version not locked yet
    gets no digest, which only the written lock file would need."""
    listings: dict[str, asyncio.Task[list[Candidate]]] = {}

    def listing(ref: ChartRef) -> asyncio.Task[list[Candidate]]:
        key = f"{ref.repository_url}\0{ref.ref}"
        if key not in listings:
            listings[key] = asyncio.ensure_future(_candidates(project, ref, charts, log))
        return listings[key]

    async def one(req: Request) -> Resolved | SpecError:
        try:
            found = await listing(req.chart)
        except DeployerError as exc:
            return SpecError(f"release '{req.key}': {exc.message}", mark=req.mark, hint=exc.hint)
        chosen = choose(req, found)
        if chosen is None:
            return _no_match(req, found)
        entry = Entry(
            environments=(req.environment,),
            chart=req.chart.ref,
            repository=None if req.chart.kind == "oci" else (req.chart.repository_url or "").rstrip("/"),
            range=None if req.exact else req.range,
            devel=req.devel and not req.exact,
            version=chosen.text,
            digest="",
        )
        before = old.entry(req.key, req.environment) if old else None
        if before is not None and before.same_chart_as(entry) and before.version == entry.version:
            if chosen.digest is not None and chosen.digest != before.digest:
                return SpecError(
                    f"release '{req.key}': chart {req.chart.ref} {chosen.text} is locked with digest "
                    f"{before.digest}, but the repository's index now gives {chosen.digest}",
                    mark=req.mark,
                    hint="the repository changed the archive of a released version; if that is expected, "
                    "delete the release's entries from deployer.lock.yaml and run `deployer lock`",
                )
            return Resolved(req, replace(entry, digest=before.digest, oci_digest=before.oci_digest))
        if not pull:
            return Resolved(req, entry)
        try:
            digest, oci_digest = await _fetch(project, req.chart, chosen, charts)
        except DeployerError as exc:
            return SpecError(f"release '{req.key}': {exc.message}", mark=req.mark, hint=exc.hint)
        return Resolved(req, replace(entry, digest=digest, oci_digest=oci_digest))

    results = await asyncio.gather(*(one(r) for r in wanted))
    SpecErrors.raise_if_any(r for r in results if isinstance(r, SpecError))
    return [r for r in results if isinstance(r, Resolved)]


def choose(req: Request, found: Sequence[Candidate]) -> Candidate | None:
    """Helm's pick: the candidate spelled exactly as asked, else the newest the range matches."""
    text = req.text.strip() if req.text else ""
    for c in found:
        if text and c.text == text:
            return c
    try:
        constraints = Constraints.parse(req.range)
    except SemverError:
        return None
    matching = [c for c in found if constraints.check(c.version, include_prerelease=req.devel)]
    return max(matching, key=lambda c: sort_key(c.version), default=None)


def _no_match(req: Request, found: Sequence[Candidate]) -> SpecError:
    newest = sorted(found, key=lambda c: sort_key(c.version))[-3:]
    shown = ", ".join(c.text for c in reversed(newest)) or "none"
    what = f"version {req.text}" if req.exact else f"version matching '{req.range}'"
    with_devel = None if req.devel else choose(replace(req, devel=True), found)
    pre = f" ({with_devel.text} would, with `devel: true`)" if with_devel else ""
    return SpecError(
        f"release '{req.key}': chart {req.chart.ref} has no {what}{pre}; newest: {shown}",
        mark=req.mark,
        hint="fix the version, or publish the chart version it names",
    )


async def _candidates(
    project: Project, ref: ChartRef, charts: ChartStore, log: Callable[[str], None]
) -> list[Candidate]:
    if ref.kind == "oci":
        return await asyncio.to_thread(_oci_candidates, project, ref)
    assert ref.repository is not None
    repo = charts.repositories[ref.repository]
    await charts.repos.ensure(repo, force=True)
    log(f"reading the index of {repo.name}")
    index = await asyncio.to_thread(_read_index, charts.repos.index_path(repo.name))
    chart = ref.ref.split("/", 1)[1]
    out: list[Candidate] = []
    for item in (index.get("entries") or {}).get(chart) or []:
        text = str(item.get("version", ""))
        try:
            version = Version.parse(text)
        except SemverError:
            continue  # helm skips what NewVersion refuses
        digest = item.get("digest")
        out.append(Candidate(text, version, f"sha256:{digest}" if digest else None))
    if not out:
        raise DeployerError(
            f"repository {repo.name} ({repo.url}) has no chart '{chart}'",
            hint="check the chart name (helm search repo)",
        )
    return out


def _read_index(path: Any) -> Mapping[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, "rb") as handle:
        data = yaml.load(handle, Loader=loader)
    return data if isinstance(data, dict) else {}


def _oci_location(project: Project, ref: ChartRef) -> Any:
    from deployer import oci

    user = password = None
    if ref.repository:
        repo = next(r for r in project.spec.repositories if r.name == ref.repository)
        user, password = credentials(repo, project.environ)
    return oci.location(ref.ref, plain_http=ref.plain_http, username=user, password=password)


def _oci_candidates(project: Project, ref: ChartRef) -> list[Candidate]:
    from deployer import oci

    out: list[Candidate] = []
    for tag in oci.tags(_oci_location(project, ref)):
        try:
            version = Version.parse_strict(tag.replace("_", "+"))
        except SemverError:
            continue  # helm's registry client reads only strict semver tags
        out.append(Candidate(str(version), version, None))
    return out


async def _fetch(
    project: Project, ref: ChartRef, chosen: Candidate, charts: ChartStore
) -> tuple[str, str | None]:
    """(archive digest, OCI manifest digest) of the chosen version, pulled through the chart cache."""
    exact = replace(ref, version=chosen.text, digest=chosen.digest)
    path = await charts.get(exact)
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    if ref.kind != "oci":
        return digest, None
    from deployer import oci

    tag = chosen.text.replace("+", "_")
    return digest, await asyncio.to_thread(oci.manifest_digest, _oci_location(project, ref), tag)
