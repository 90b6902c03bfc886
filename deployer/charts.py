"""Charts on local disk: local directories (dependencies built when missing), and repository or
OCI charts pulled once into a cache keyed by (repository URL, chart, version) and reused, so an
unchanged spec renders with no network request at all."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deployer import provenance
from deployer.errors import DeployerError, HelmError, SpecError
from deployer.helm import Helm
from deployer.helmignore import chart_files
from deployer.project import ChartRef
from deployer.repos import RepoManager


@dataclass
class ChartStore:
    helm: Helm
    repos: RepoManager
    cache: Path
    repositories: Mapping[str, Any]  # spec repositories by name
    log: Callable[[str], None] = lambda _msg: None
    _tasks: dict[str, asyncio.Task[Path]] = field(default_factory=dict)

    _metadata: dict[Path, dict[str, Any]] = field(default_factory=dict)
    _digests: dict[Path, str] = field(default_factory=dict)
    _contents: dict[Path, ChartContents] = field(default_factory=dict)

    def contents(self, chart: Path) -> ChartContents:
        """What the plan needs to know of a chart's files, read once per run."""
        if chart not in self._contents:
            self._contents[chart] = chart_contents(chart)
        return self._contents[chart]

    def metadata(self, chart: Path) -> dict[str, Any]:
        """Chart.yaml, read once per run (many releases share a chart)."""
        if chart not in self._metadata:
            self._metadata[chart] = chart_metadata(chart)
        return self._metadata[chart]

    def digest(self, chart: Path) -> str:
        """The chart's content digest, computed once per run."""
        if chart not in self._digests:
            self._digests[chart] = chart_digest(chart)
        return self._digests[chart]

    def cached_path(self, ref: ChartRef) -> Path:
        origin = ref.repository_url or ref.ref
        digest = hashlib.sha256(f"{origin}\0{ref.ref}\0{ref.version}".encode()).hexdigest()[:16]
        return self.cache / "charts" / f"{_safe(ref.name)}-{_safe(ref.version or '')}-{digest}.tgz"

    async def get(self, ref: ChartRef) -> Path:
        """A path helm can render: the chart directory, or the cached .tgz (pulled if missing)."""
        key = ref.ref if ref.kind == "local" else str(self.cached_path(ref))
        if key not in self._tasks:
            self._tasks[key] = asyncio.ensure_future(self._get(ref))
        return await self._tasks[key]

    async def _get(self, ref: ChartRef) -> Path:
        if ref.kind == "local":
            await self._build_dependencies(Path(ref.ref))
            return Path(ref.ref)
        target = self.cached_path(ref)
        # A locked chart is checked even when cached (its digest is computed once per run anyway,
        # for the render cache); a cached archive that differs is pulled again, then refused.
        if target.exists() and (ref.digest is None or f"sha256:{self.digest(target)}" == ref.digest):
            if not ref.keyring:
                return target
            if Path(f"{target}.prov").is_file():  # verify: checked every run, cached or not
                await provenance.check_cached(self.helm, ref, target)
                return target
            # cached before `verify:` was set: pulled again, with its .prov
        return await self._pull(ref, target)

    async def _pull_once(self, ref: ChartRef, args: list[str]) -> None:
        try:
            await self.helm.run(args)
        except HelmError as exc:
            if ref.keyring:
                raise provenance.failed_pull(ref, exc) from None
            raise

    async def _pull(self, ref: ChartRef, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".pull-") as tmp:
            if ref.kind == "oci":
                if ref.repository:
                    await self.repos.ensure(self.repositories[ref.repository])
                args = ["pull", ref.ref, "--version", str(ref.version), "--destination", tmp]
                args += provenance.pull_args(ref)
                if ref.plain_http:
                    args.append("--plain-http")
                self.log(f"pulling {ref.ref} {ref.version}")
                await self._pull_once(ref, args)
            else:
                assert ref.repository is not None
                repo = self.repositories[ref.repository]
                await self.repos.ensure(repo)
                args = ["pull", ref.ref, "--version", str(ref.version), "--destination", tmp]
                args += provenance.pull_args(ref)
                self.log(f"pulling {ref.ref} {ref.version}")
                try:
                    await self._pull_once(ref, args)
                except HelmError:  # (a provenance failure is not one: it is raised as it is)
                    if self.repos.refresh:
                        raise
                    # The version may be newer than our cached index: refresh it once and retry.
                    await self.repos.ensure(repo, force=True)
                    await self._pull_once(ref, args)
            pulled = sorted(Path(tmp).glob("*.tgz"))
            if len(pulled) != 1:
                raise HelmError(
                    command=["helm", *args], returncode=0, stderr=f"expected one chart, got {pulled}"
                )
            if ref.digest is not None:
                got = f"sha256:{chart_digest(pulled[0])}"
                if got != ref.digest:
                    raise ChartDigestMismatch(ref, got)
            os.replace(pulled[0], target)
            signature = Path(f"{pulled[0]}.prov")
            if signature.is_file():  # helm pull --verify keeps the .prov: checked again on later runs
                os.replace(signature, f"{target}.prov")
            self._digests.pop(target, None)
        return target

    async def _build_dependencies(self, chart_dir: Path) -> None:
        meta = yaml.safe_load((chart_dir / "Chart.yaml").read_text()) or {}
        deps = meta.get("dependencies") or []
        if not deps or all(_present(chart_dir, d) for d in deps):
            return
        # helm's private configuration knows only the spec's repositories: a dependency from any
        # other would fail with helm's `no cached repository for helm-manager-<hash>`, whose advice
        # (`helm repo update`) the user cannot follow. Each is refreshed as for a repository chart.
        for dep in deps:
            repo = self._dependency_repository(str(meta.get("name") or chart_dir.name), dep)
            if repo is not None:
                await self.repos.ensure(repo)
        self.log(f"building dependencies of {chart_dir.name}")
        await self.helm.run(["dependency", "build", str(chart_dir), "--skip-refresh"])

    def _dependency_repository(self, chart: str, dep: Mapping[str, Any]) -> Any:
        """The spec repository a local chart's dependency comes from (None: a file:// or OCI one
        needs no index), or a SpecError naming the repository to declare."""
        where = str(dep.get("repository") or "")
        what = f"local chart {chart} needs {dep.get('name')} {dep.get('version') or ''}".rstrip()
        if where.startswith(("@", "alias:")):
            name = where.split(":", 1)[1] if where.startswith("alias:") else where[1:]
            if name in self.repositories:
                return self.repositories[name]
            raise SpecError(
                f"{what} from repository '{name}' ({where}), which deployer.yaml does not declare",
                hint=f"add it under repositories: (- name: {name}, url: ...); nothing was changed",
            )
        if not where.startswith(("http://", "https://")):
            found = [r for r in self.repositories.values() if where.startswith(r.url.rstrip("/") + "/")]
            return found[0] if where.startswith("oci://") and found else None  # an OCI login, if any
        url = where.rstrip("/")
        for repo in self.repositories.values():
            if repo.url.rstrip("/") == url:
                return repo
        raise SpecError(
            f"{what} from {where}, a repository deployer.yaml does not declare",
            hint=f"add it under repositories: (- name: <any name>, url: {url}) so deployer can fetch its "
            "index; nothing was changed",
        )


class ChartDigestMismatch(DeployerError):
    """A pulled chart archive is not the one the lock file records (deployer/chartlock.py)."""

    def __init__(self, ref: ChartRef, pulled: str) -> None:
        self.ref = ref
        self.pulled = pulled
        super().__init__(
            f"chart {ref.ref} {ref.version}: the archive pulled has digest {pulled}, but deployer.lock.yaml "
            f"locks {ref.digest}",
            hint="the repository now serves other content under this version (a re-pushed tag, or a "
            "tampered repository), and nothing was rendered; if the new content is expected, delete "
            "the release's entries from deployer.lock.yaml and run `deployer lock`",
        )


def _present(chart_dir: Path, dep: Mapping[str, Any]) -> bool:
    name = str(dep.get("name"))
    charts = chart_dir / "charts"
    if (charts / name / "Chart.yaml").is_file():
        return True
    return any(re.fullmatch(re.escape(name) + r"-\d.*\.tgz", p.name) for p in charts.glob("*.tgz"))


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def chart_metadata(chart: Path) -> dict[str, Any]:
    """Chart.yaml of a chart directory or packaged .tgz ."""
    if chart.is_dir():
        text = (chart / "Chart.yaml").read_text()
    else:
        with tarfile.open(chart) as tar:
            member = next(
                m for m in tar.getmembers() if m.name.count("/") == 1 and m.name.endswith("/Chart.yaml")
            )
            handle = tar.extractfile(member)
            assert handle is not None
            text = handle.read().decode()
    meta = yaml.safe_load(text) or {}
    return meta if isinstance(meta, dict) else {}


@dataclass(frozen=True)
class ChartContents:
    crds: Mapping[str, str]  # the chart's own crds/ files (helm's file names) -> sha256
    uses_lookup: bool  # a template of the chart or of any subchart calls `lookup`
    crd_text: Mapping[str, str] = field(default_factory=dict)  # the same files' YAML (crds: createReplace)
    # a template of the chart or of any subchart reads .Capabilities.APIVersions (`.Has "x/v1/Kind"`):
    # what it renders depends on the API versions the cluster serves
    uses_api_versions: bool = False


# `lookup` as a word that is not a field (`.Values.lookup`): `{{ lookup ...`, `:= lookup ...`,
# `(lookup ...`. A false positive (a comment, a string) only costs a render against the cluster.
_LOOKUP = re.compile(rb"(?<![.\w$])lookup\b")
# .Capabilities.APIVersions (`$.Capabilities.APIVersions.Has`, `.Capabilities.APIVersions.Has`): a
# false positive (a comment) only adds a release to the offline plan's note.
_API_VERSIONS = re.compile(rb"\.Capabilities\.APIVersions\b")


@dataclass
class _Uses:
    lookup: bool = False
    api_versions: bool = False

    @property
    def done(self) -> bool:
        return self.lookup and self.api_versions

    def scan(self, text: bytes) -> None:
        self.lookup = self.lookup or bool(_LOOKUP.search(text))
        self.api_versions = self.api_versions or bool(_API_VERSIONS.search(text))


def chart_contents(chart: Path) -> ChartContents:
    """The crds/ digests and what the templates use (`lookup`, .Capabilities.APIVersions), for a
    directory or a .tgz."""
    crds: dict[str, str] = {}
    text: dict[str, str] = {}
    uses = _Uses()
    for name, read in _chart_files(chart):
        parts = name.split("/")
        if parts[0] == "crds" and len(parts) > 1:
            data = read()
            crds[name] = hashlib.sha256(data).hexdigest()
            if name.endswith((".yaml", ".yml", ".json")):  # helm reads only these as CRDs
                text[name] = data.decode("utf-8", errors="replace")
        elif "templates" in parts[:-1] and not uses.done:
            uses.scan(read())
        elif parts[0] == "charts" and name.endswith(".tgz") and not uses.done:
            _scan_archive(read(), uses)
    return ChartContents(
        crds=dict(sorted(crds.items())),
        uses_lookup=uses.lookup,
        uses_api_versions=uses.api_versions,
        crd_text=dict(sorted(text.items())),
    )


def _chart_files(chart: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """(path inside the chart, reader) for every file helm loads of a chart directory (its
    .helmignore honoured) or .tgz (every file: `helm package` applied .helmignore already)."""
    if chart.is_dir():
        for path in chart_files(chart):
            yield str(path.relative_to(chart).as_posix()), path.read_bytes
        return
    with tarfile.open(chart) as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is not None and "/" in member.name:
                yield member.name.split("/", 1)[1], handle.read


def _scan_archive(data: bytes, uses: _Uses) -> None:
    import io

    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is None or uses.done:
                continue
            if member.name.endswith(".tgz"):
                _scan_archive(handle.read(), uses)
            elif "/templates/" in member.name:
                uses.scan(handle.read())


def chart_digest(chart: Path) -> str:
    """A content digest of a chart directory (every file, with its path) or of a .tgz."""
    digest = hashlib.sha256()
    if chart.is_file():
        digest.update(chart.read_bytes())
        return digest.hexdigest()
    for path in sorted(p for p in chart.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(chart)).encode() + b"\0")
        if path.suffix == ".tgz":  # a built dependency: its content, not its timestamps
            _digest_archive(digest, path)
        else:
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _digest_archive(digest: Any, path: Path) -> None:
    with tarfile.open(path) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            handle = tar.extractfile(member) if member.isfile() else None
            digest.update(member.name.encode() + b"\0" + (handle.read() if handle else b"") + b"\0")
