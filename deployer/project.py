"""Load deployer.yaml, check everything that can be checked without helm or a cluster, and resolve
one environment into the releases it wants. Reads files; writes nothing."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from deployer import speccache
from deployer.cache import cache_dir
from deployer.errors import Mark, SpecError, SpecErrors, UsageError
from deployer.graph import find_cycle
from deployer.includes import merge_includes
from deployer.interpolation import Interpolator
from deployer.merge import Layer, Origin, ValuePath
from deployer.paths import resolved
from deployer.releaseflags import ReleaseFlags
from deployer.sops import check_metadata, is_encrypted
from deployer.variables import check_declarations
from deployer.yamlsource import Document, PathKey, display_path, load_file

SPEC_FILE = "deployer.yaml"
# Helm's release name rule: DNS-1123 subdomain, at most 53 characters.
RELEASE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
RELEASE_NAME_MAX = 53
LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class ChartRef:
    kind: Literal["local", "repo", "oci"]
    ref: str  # local: absolute directory; repo: "<repository>/<chart>"; oci: the full oci:// URL
    name: str  # the chart's name
    version: str | None
    repository_url: str | None = None
    plain_http: bool = False
    repository: str | None = None  # the spec's repository name, when one applies
    digest: str | None = None  # sha256:<hex> of the archive, when deployer.lock.yaml locks it
    keyring: str | None = None  # verify: the public keyring the chart's provenance is checked against


@dataclass(frozen=True)
class DesiredRelease:
    name: str
    namespace: str
    chart: ChartRef
    needs: tuple[str, ...]  # keys (namespace/name) of the releases this one needs
    labels: Mapping[str, str]
    installed: bool
    timeout: int
    wait: bool
    atomic: bool
    sensitive: tuple[str, ...]
    layers: tuple[Layer, ...]
    mark: Mark
    flags: ReleaseFlags = field(default_factory=ReleaseFlags)
    ignore: tuple[Any, ...] = ()  # deployer.ignore.Rule: defaults, release, environment, override
    crds: str = "create"  # create | createReplace | skip

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class Project:
    """deployer.yaml, checked, with its values files loaded."""

    path: Path
    doc: Document
    spec: Any  # deployer.model.Spec (imported lazily: pydantic stays out of start-up)
    environ: Mapping[str, str]
    values_docs: dict[Path, Document] = field(default_factory=dict)
    sops: str | None = None  # --sops: the sops binary that decrypts encrypted values files
    decrypted: dict[Path, Document] = field(default_factory=dict)  # in memory only, never written
    included: list[Path] = field(default_factory=list)  # the files `include:` merged in, in order
    spec_cache: Path | None = None  # deployer/speccache.py's directory
    _keys_by_name: dict[str, list[str]] | None = field(default=None, repr=False, compare=False)

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def name(self) -> str:
        """The project identity releases are labelled with: `project:` or the spec's directory name."""
        return str(self.spec.project or label_value(self.root.name))

    def keys_by_name(self) -> dict[str, list[str]]:
        """Every release's `namespace/name` key, by release name, in spec order. Built once: needs
        and overlay keys are looked up in it, so checking a spec stays linear in its releases."""
        if self._keys_by_name is None:
            index: dict[str, list[str]] = {}
            for rel in self.spec.releases:
                index.setdefault(rel.name, []).append(release_key(self, rel))
            self._keys_by_name = index
        return self._keys_by_name

    def names_and_keys(self) -> set[str]:
        """Every way a release can be named: its name and its `namespace/name` key."""
        index = self.keys_by_name()
        return set(index).union(*index.values())

    @property
    def environment_names(self) -> list[str]:
        return sorted(self.spec.environments)

    def environment(self, name: str) -> Any:
        if name not in self.spec.environments:
            known = ", ".join(self.environment_names) or "(none defined)"
            close = difflib.get_close_matches(name, self.environment_names, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise UsageError(
                f"unknown environment '{name}' (known: {known})",
                mark=self.doc.mark(("environments",), key=True)
                if "environments" in (self.doc.data or {})
                else None,
                hint=hint + f"add it under 'environments:' in {self.doc.file}, or pick a known one",
            )
        return self.spec.environments[name] or speccache.new(self.spec_cache, "Environment")


def load_project(path: Path, environ: Mapping[str, str] | None = None, *, sops: str | None = None) -> Project:
    env = os.environ if environ is None else environ
    if path.is_dir():
        path = path / SPEC_FILE
    if not path.exists():
        raise UsageError(
            f"no spec at {display_path(path)}",
            hint="run deployer in the directory that holds deployer.yaml, or pass -f PATH",
        )
    doc = load_file(path, interpolate=Interpolator(env), defer_vars=True)
    if doc.data is None:
        doc.data = {}
    included = merge_includes(doc, path.parent, Interpolator(env)) if isinstance(doc.data, dict) else []
    if not isinstance(doc.data, dict):
        raise SpecError(
            "deployer.yaml must be a mapping with repositories, defaults, environments and releases",
            mark=doc.mark(()),
        )
    spec_cache = cache_dir(env) / "specs"
    try:
        spec = speccache.load(doc.data, spec_cache)
    except Exception as exc:
        from pydantic import ValidationError

        if not isinstance(exc, ValidationError):
            raise
        from deployer.model import Spec
        from deployer.pydantic_errors import spec_errors

        SpecErrors.raise_if_any(spec_errors(exc, doc, Spec))
        raise
    project = Project(path=path.resolve(), doc=doc, spec=spec, environ=env, sops=sops, included=included)
    project.spec_cache = spec_cache
    SpecErrors.raise_if_any(_check(project))
    return project


def _check(project: Project) -> list[SpecError]:
    errors: list[SpecError] = []
    spec, doc = project.spec, project.doc
    repos = {r.name: r for r in spec.repositories}
    seen_repos: dict[str, int] = {}
    for i, repo in enumerate(spec.repositories):
        if repo.name in seen_repos:
            errors.append(
                SpecError(
                    f"duplicate repository '{repo.name}'",
                    mark=doc.mark(("repositories", i, "name")),
                    hint="repository names must be unique; rename or remove one",
                )
            )
        seen_repos[repo.name] = i
        if not re.match(r"^(https?|oci)://", repo.url):
            errors.append(
                SpecError(
                    f"repository '{repo.name}' has URL '{repo.url}'",
                    mark=doc.mark(("repositories", i, "url")),
                    hint="use https://... (a chart repository) or oci://... (an OCI registry)",
                )
            )
    keys: dict[str, int] = {}
    for i, rel in enumerate(spec.releases):
        at = ("releases", i)
        if len(rel.name) > RELEASE_NAME_MAX or not RELEASE_NAME.match(rel.name):
            errors.append(
                SpecError(
                    f"invalid release name '{rel.name}'",
                    mark=doc.mark((*at, "name")),
                    hint="Helm release names are lowercase letters, digits, '-' and '.', start and end "
                    f"with a letter or digit, at most {RELEASE_NAME_MAX} characters",
                )
            )
        namespace = namespace_of(project, rel)
        if not NAMESPACE.match(namespace) or len(namespace) > 63:
            errors.append(
                SpecError(
                    f"invalid namespace '{namespace}' for release '{rel.name}'",
                    mark=doc.mark((*at, "namespace"))
                    if rel.namespace
                    else doc.mark(("defaults", "namespace")),
                    hint="namespaces are lowercase letters, digits and '-', at most 63 characters",
                )
            )
        key = f"{namespace}/{rel.name}"
        if key in keys:
            first = doc.mark(("releases", keys[key], "name"))
            here = doc.mark((*at, "name"))
            where = f"line {first.line}" if first.file == here.file else str(first)
            errors.append(
                SpecError(
                    f"duplicate release '{key}' (first defined at {where})",
                    mark=doc.mark((*at, "name")),
                    hint="give one of them another name or namespace",
                )
            )
        keys.setdefault(key, i)
        errors.extend(_check_chart(project, rel.chart, rel.version, repos, (*at,)))
        for j, entry in enumerate(rel.values):
            if isinstance(entry, str):
                try:
                    values_doc(project, entry, doc.mark((*at, "values", j)))
                except SpecError as exc:
                    errors.append(exc)
    errors.extend(_check_needs(project))
    errors.extend(check_declarations(project))
    if spec.project is not None and (len(spec.project) > 63 or not LABEL_VALUE.match(spec.project)):
        errors.append(
            SpecError(
                f"invalid project name '{spec.project}'",
                mark=doc.mark(("project",)),
                hint="deployer labels releases with it: use letters, digits, '-', '_' and '.', "
                "at most 63 characters",
            )
        )
    for env_name in spec.environments:
        if len(env_name) > 63 or not LABEL_VALUE.match(env_name):
            errors.append(
                SpecError(
                    f"invalid environment name '{env_name}'",
                    mark=doc.mark(("environments", env_name), key=True),
                    hint="deployer labels releases with it: use letters, digits, '-', '_' and '.', "
                    "at most 63 characters, starting and ending with a letter or digit",
                )
            )
    known = project.names_and_keys()
    for env_name, env in spec.environments.items():
        for rel_name, override in env.releases.items() if env else []:
            at_env = ("environments", env_name, "releases", rel_name)
            if rel_name not in known:
                errors.append(
                    unknown_release(
                        project, rel_name, doc.mark(at_env, key=True), f"environment '{env_name}'"
                    )
                )
            elif override.chart or override.version:
                rel = find_release(project, rel_name)
                errors.extend(
                    _check_chart(
                        project,
                        override.chart or rel.chart,
                        override.version or rel.version,
                        repos,
                        at_env,
                        own_version=bool(override.version),
                    )
                )
    return errors


def label_value(text: str) -> str:
    """`text` made into a valid label value (letters, digits, '-', '_', '.'; at most 63)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:63].strip("-_.")
    return cleaned or "default"


def namespace_of(project: Project, rel: Any) -> str:
    return str(rel.namespace or project.spec.defaults.namespace or "default")


def release_key(project: Project, rel: Any) -> str:
    return f"{namespace_of(project, rel)}/{rel.name}"


def flags_of(project: Project, key: str) -> ReleaseFlags:
    """The helm flags of the spec's release `namespace/name` (defaults' for one not in the spec: a
    release being pruned, or one the spec no longer has)."""
    from deployer.releaseflags import resolve_flags

    defaults = project.spec.defaults
    rel = next((r for r in project.spec.releases if release_key(project, r) == key), defaults)
    return resolve_flags(rel, defaults)


def find_release(project: Project, ref: str) -> Any:
    return next(r for r in project.spec.releases if r.name == ref or release_key(project, r) == ref)


def unknown_release(project: Project, ref: str, mark: Mark, where: str) -> SpecError:
    names = sorted({r.name for r in project.spec.releases})
    close = difflib.get_close_matches(ref.rsplit("/", maxsplit=1)[-1], names, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"known releases: {', '.join(names) or '(none)'}"
    return SpecError(
        f"{where} names release '{ref}', which is not in {project.doc.file}", mark=mark, hint=hint
    )


def _check_chart(
    project: Project,
    chart: str,
    version: str | None,
    repos: Mapping[str, Any],
    at: PathKey,
    *,
    own_version: bool = True,
) -> list[SpecError]:
    doc = project.doc
    mark = doc.mark((*at, "chart"))
    try:
        ref = chart_ref(project, chart, version, repos)
    except SpecError as exc:
        return [SpecError(exc.message, mark=mark, hint=exc.hint)]
    if ref.kind != "local" and version and own_version:
        from deployer.chartlock import range_error

        problem = range_error(version)
        if problem:
            return [SpecError(problem[0], mark=doc.mark((*at, "version")), hint=problem[1])]
    if ref.kind == "local" and not (Path(ref.ref) / "Chart.yaml").is_file():
        shown = display_path(Path(ref.ref))
        what = "has no Chart.yaml" if Path(ref.ref).is_dir() else "does not exist"
        return [
            SpecError(
                f"local chart {shown} {what}",
                mark=mark,
                hint="local charts are directories relative to deployer.yaml; "
                "repository charts are <repository>/<chart>",
            )
        ]
    return []


def chart_ref(
    project: Project, chart: str, version: str | None, repos: Mapping[str, Any] | None = None
) -> ChartRef:
    repos = repos if repos is not None else {r.name: r for r in project.spec.repositories}
    if chart.startswith("oci://"):
        repo = next((r for r in repos.values() if chart.startswith(r.url.rstrip("/") + "/")), None)
        return ChartRef(
            "oci",
            chart,
            chart.rstrip("/").rsplit("/", 1)[-1],
            version,
            repository_url=repo.url if repo else None,
            plain_http=bool(repo and repo.plain_http),
            repository=repo.name if repo else None,
        )
    if chart.startswith((".", "/")) or chart.count("/") != 1:
        return ChartRef("local", str(resolved(project.root / chart)), Path(chart).name, version)
    repo_name, chart_name = chart.split("/")
    if repo_name not in repos:
        if (project.root / chart).is_dir():
            return ChartRef("local", str(resolved(project.root / chart)), chart_name, version)
        close = difflib.get_close_matches(repo_name, list(repos), n=1)
        hint = (
            f"did you mean '{close[0]}/{chart_name}'?"
            if close
            else (f"add repository '{repo_name}' under 'repositories:', or write a local chart as ./{chart}")
        )
        raise SpecError(f"chart '{chart}' names repository '{repo_name}', which is not defined", hint=hint)
    repo = repos[repo_name]
    if repo.url.startswith("oci://"):
        url = f"{repo.url.rstrip('/')}/{chart_name}"
        return ChartRef(
            "oci",
            url,
            chart_name,
            version,
            repository_url=repo.url,
            plain_http=repo.plain_http,
            repository=repo.name,
        )
    return ChartRef("repo", chart, chart_name, version, repository_url=repo.url, repository=repo.name)


def _check_needs(project: Project) -> list[SpecError]:
    errors: list[SpecError] = []
    edges: dict[str, list[str]] = {}
    for i, rel in enumerate(project.spec.releases):
        key = release_key(project, rel)
        edges.setdefault(key, [])
        for j, need in enumerate(rel.needs):
            mark = project.doc.mark(("releases", i, "needs", j))
            try:
                edges[key].append(resolve_need(project, need))
            except SpecError as exc:
                errors.append(SpecError(f"release '{rel.name}' {exc.message}", mark=mark, hint=exc.hint))
    cycle = find_cycle(edges)
    if cycle:
        first = next(i for i, r in enumerate(project.spec.releases) if release_key(project, r) == cycle[0])
        errors.append(
            SpecError(
                "needs form a cycle: " + " -> ".join(cycle),
                mark=project.doc.mark(("releases", first, "needs"), key=True),
                hint="remove one of these needs so the releases can be ordered",
            )
        )
    return errors


def resolve_need(project: Project, need: str) -> str:
    index = project.keys_by_name()
    if "/" in need:
        if need in index.get(need.rsplit("/", maxsplit=1)[1], []):
            return need
        matches = []
    else:
        matches = list(index.get(need, []))
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise SpecError(
            f"needs '{need}', which is ambiguous ({', '.join(sorted(matches))})",
            hint="write the need as namespace/name",
        )
    names = sorted(index)
    close = difflib.get_close_matches(need.rsplit("/", maxsplit=1)[-1], names, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"known releases: {', '.join(names) or '(none)'}"
    raise SpecError(f"needs '{need}', which is not a release in this spec", hint=hint)


def values_doc(project: Project, file: str, mark: Mark) -> Document:
    path = resolved(project.root / file)
    if path in project.values_docs:
        return project.values_docs[path]
    if not path.is_file():
        raise SpecError(
            f"values file {display_path(path)} does not exist",
            mark=mark,
            hint="values files are relative to deployer.yaml; create it or fix the path",
        )
    doc = load_file(path)  # release values files are not interpolated (DESIGN.md)
    if doc.data is None:
        doc.data = {}
    if is_encrypted(doc):
        check_metadata(doc)  # decrypted when an environment is resolved (deployer/desired.py)
    if not isinstance(doc.data, dict):
        raise SpecError(
            f"values file must be a mapping of values, not {_kind(doc.data)}",
            mark=doc.mark(()),
            hint="write key: value pairs at the top level",
        )
    project.values_docs[path] = doc
    return doc


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def doc_layer(doc: Document, data: Mapping[str, Any], prefix: PathKey = ()) -> Layer:
    """A merge layer from a (part of a) document, each path carrying its file:line:column.

    Walks `data` (not every mark of the document), so the cost is the size of this layer only.
    """
    origins: dict[ValuePath, Origin] = {}

    def walk(node: Mapping[str, Any], rest: ValuePath) -> None:
        for key, value in node.items():
            path = (*rest, str(key))
            mark = doc.value_marks.get((*prefix, *path))
            if mark is not None:
                origins[path] = Origin(str(mark))
            if isinstance(value, Mapping):
                walk(value, path)

    walk(data, ())
    return Layer(values=data, origins=origins)
