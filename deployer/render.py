"""Render releases with the real helm binary, in parallel, in a deterministic order.

Each release gets exactly one merged values file, written 0600 in a private directory that is
removed afterwards, so helm applies Helm's own semantics to one document (including `null`).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from deployer import cache_scrub, cancel
from deployer.charts import ChartContents, ChartStore
from deployer.helm import Helm
from deployer.manifests import split_hooks
from deployer.project import DesiredRelease
from deployer.redact import for_values, masked_errors
from deployer.releaseflags import template_args
from deployer.yamlsource import HelmDumper


@dataclass(frozen=True)
class Rendered:
    """One release rendered as helm would install or upgrade it."""

    release: DesiredRelease
    output: str  # `helm template` output: manifest, then hooks (tests included)
    chart_name: str  # from Chart.yaml, as helm stores it (never the directory name)
    chart_version: str
    contents: ChartContents
    cached: bool = False
    looked_up: bool = False  # rendered against the cluster, so `lookup` saw the live objects

    @cached_property
    def _split(self) -> tuple[str, str]:
        return split_hooks(self.output)  # once per render: both halves come from one pass

    @property
    def manifest(self) -> str:
        return self._split[0]

    @property
    def hooks(self) -> str:
        return self._split[1]


@contextmanager
def private_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="deployer-"))  # mkdtemp creates it 0700
    cancel.track_private_dir(path)  # a second signal removes it before the process ends
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        cancel.untrack_private_dir(path)


def write_values(directory: Path, name: str, values: Mapping[str, Any] | str) -> Path:
    """The values file helm reads (`values`, or its text from dump_values), private to the user."""
    path = directory / f"{name}.values.yaml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(values if isinstance(values, str) else dump_values(values))
    return path


def dump_values(values: Mapping[str, Any]) -> str:
    # HelmDumper: helm must read back the very strings deployer merged (`y` stays "y", not true).
    return yaml.dump(
        dict(values), Dumper=HelmDumper, sort_keys=True, default_flow_style=False, allow_unicode=True
    )


async def render_all(
    helm: Helm,
    charts: ChartStore,
    releases: Sequence[DesiredRelease],
    values: Mapping[str, Mapping[str, Any]],
    *,
    concurrency: int,
    kube_version: str | None = None,
    api_versions: Sequence[str] = (),
    log: Callable[[str], None] = lambda _msg: None,
    render_cache: Path | None = None,
    upgrades: Collection[str] = (),
    cluster_flags: Sequence[str] | None = None,
    stored: Mapping[str, str] | None = None,
) -> list[Rendered]:
    """Render `releases` (keyed values in `values`) and return them in the order given.

    Releases in `upgrades` (keys of releases helm will upgrade) render with `--is-upgrade`, so
    `.Release.IsUpgrade` is what the upgrade will see. With `cluster_flags`, a chart that calls
    `lookup` renders with `--dry-run=server` against that cluster, so lookup sees the live objects;
    such renders are never cached (the cluster can change under the same inputs). Without it,
    lookup returns nothing, as in any offline render.

    With `render_cache`, a release whose chart digest, values, kube version, API versions, helm
    version and install/upgrade mode are unchanged since an earlier render is not rendered again.
    `stored` (release key -> the installed release's stored manifest and hooks) lets a cached
    render whose Secrets hold texts that no value gives (a derived password, a chart default) be
    restored when the installed release holds the same texts (deployer/cache_scrub.py).
    """
    stored = stored or {}
    limit = asyncio.Semaphore(max(1, concurrency))
    with private_dir() as tmp:

        async def one(index: int, release: DesiredRelease) -> Rendered:
            chart = await charts.get(release.chart)
            meta = charts.metadata(chart)
            contents = charts.contents(chart)
            is_upgrade = release.key in upgrades
            live = contents.uses_lookup and cluster_flags is not None

            def done(output: str, *, cached: bool = False) -> Rendered:
                name, version = str(meta.get("name", "")), str(meta.get("version", ""))
                return Rendered(release, output, name, version, contents, cached=cached, looked_up=live)

            cache_file = None
            values_text = ""  # the file helm reads, dumped only to render (or as a key, below)
            if render_cache is not None and not live:
                salt = cache_scrub.salt(render_cache)
                key_text = values_key(values[release.key])
                if key_text is None:
                    key_text = values_text = dump_values(values[release.key])
                key = _cache_key(
                    release,
                    charts.digest(chart),
                    key_text,
                    kube_version,
                    api_versions,
                    f"{helm.version_text} upgrade={is_upgrade} {template_args(release.flags)}",
                    salt,
                )
                cache_file = render_cache / f"{key}.yaml"
                cached = _read_cached(
                    cache_file, release, values[release.key], salt, stored.get(release.key, "")
                )
                if cached is not None:
                    return done(cached, cached=True)
            async with limit:
                values_text = values_text or dump_values(values[release.key])
                values_file = write_values(tmp, f"{index:04d}-{release.name}", values_text)
                args = template_argv(release, chart, values_file, kube_version, api_versions, is_upgrade)
                if live:
                    assert cluster_flags is not None
                    args += ["--dry-run=server", *cluster_flags]
                log(f"rendering {release.key}{' against the cluster (it uses lookup)' if live else ''}")
                with masked_errors(for_values(values[release.key], release.sensitive)):
                    output = await helm.run(args, release=release.key)
            if cache_file is not None:
                _write_cached(cache_file, output, release, values[release.key], salt)
            return done(output)

        # Every chart first: a locked chart whose digest differs stops the run before any render.
        fetched = await asyncio.gather(*(charts.get(r.chart) for r in releases), return_exceptions=True)
        for outcome in fetched:
            if isinstance(outcome, BaseException):
                raise outcome
        tasks = [asyncio.ensure_future(one(i, r)) for i, r in enumerate(releases)]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise


def template_argv(  # noqa: PLR0917
    release: DesiredRelease,
    chart: Path,
    values_file: Path,
    kube_version: str | None,
    api_versions: Sequence[str],
    is_upgrade: bool,
) -> list[str]:
    """`helm template` of one release, as its install or upgrade will render it."""
    args = [
        "template",
        release.name,
        str(chart),
        "--namespace",
        release.namespace,
        "--values",
        str(values_file),
    ]
    if kube_version:
        args += ["--kube-version", kube_version]
    for api in api_versions:
        args += ["--api-versions", api]
    if is_upgrade:
        args.append("--is-upgrade")
    args += template_args(release.flags)
    if release.crds == "skip":  # as install/upgrade get it (helm template prints no CRDs)
        args.append("--skip-crds")
    return args


# What decides the text dump_values writes besides the values themselves: a change of HelmDumper's
# quoting rules or of PyYAML changes it, and so every key made by values_key.
_DUMP_FORMAT = f"pyyaml {yaml.__version__} {sorted(map(repr, HelmDumper.yaml_implicit_resolvers.items()))}"


def values_key(values: Mapping[str, Any]) -> str | None:
    """The values as the render cache keys them: canonical JSON (C-accelerated, ~1 ms a release
    faster than dumping YAML, which is what a warm diff at N=1000 spent most per release on,
    issue 14) with the dump format, or None when JSON could confuse two values that helm reads
    differently: a key that is not a string, or a value JSON has no type for (a date, bytes)."""
    if not _str_keys(values):
        return None
    try:
        text = json.dumps(values, sort_keys=True, separators=(",", ":"), default=_no_json)
    except (TypeError, ValueError):
        return None
    return f"{_DUMP_FORMAT}\n{text}"


def _no_json(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def _str_keys(value: Any) -> bool:
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _str_keys(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_str_keys(v) for v in value)
    return True


def _cache_key(  # noqa: PLR0917
    release: DesiredRelease,
    digest: str,
    values_text: str,
    kube_version: str | None,
    api_versions: Sequence[str],
    helm_version: str,
    salt: bytes,
) -> str:
    # Salted (HMAC): the key is no function of the values that anyone without this cache can test.
    material = json.dumps(
        [
            release.name,
            release.namespace,
            digest,
            values_text,  # values_key, or the file helm reads: a change in either is a new key
            kube_version,
            sorted(api_versions),
            helm_version,
        ],
        sort_keys=True,
        default=str,
    )
    return cache_scrub.digest(salt, material)


def _read_cached(
    path: Path, release: DesiredRelease, values: Mapping[str, Any], salt: bytes, installed: str
) -> str | None:
    """A cached render as helm printed it (secret texts restored), or None: render again."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return cache_scrub.restore(text, values, release.sensitive, salt, installed)


def _write_cached(
    path: Path, output: str, release: DesiredRelease, values: Mapping[str, Any], salt: bytes
) -> None:
    """Cache a render with its secret texts scrubbed, or not at all when that cannot round-trip."""
    scrubbed = cache_scrub.scrub(output, values, release.sensitive, salt)
    if scrubbed is not None:
        _write_private(path, scrubbed)


def _write_private(path: Path, text: str) -> None:
    """Atomically write a file only the user can read (and scrubbed: deployer/cache_scrub.py)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(partial, path)
