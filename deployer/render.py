"""Render releases with the real helm binary, in parallel, in a deterministic order.

Each release gets exactly one merged values file, written 0600 in a private directory that is
removed afterwards, so helm applies Helm's own semantics to one document (including `null`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deployer.charts import ChartStore
from deployer.helm import Helm
from deployer.project import DesiredRelease


@dataclass(frozen=True)
class Rendered:
    release: DesiredRelease
    manifest: str


@contextmanager
def private_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="deployer-"))  # mkdtemp creates it 0700
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_values(directory: Path, name: str, values: Mapping[str, Any]) -> Path:
    path = directory / f"{name}.values.yaml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(dict(values), handle, sort_keys=True, default_flow_style=False, allow_unicode=True)
    return path


def dump_values(values: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(values), sort_keys=True, default_flow_style=False, allow_unicode=True)


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
) -> list[Rendered]:
    """Render `releases` (keyed values in `values`) and return them in the order given."""
    limit = asyncio.Semaphore(max(1, concurrency))
    with private_dir() as tmp:

        async def one(index: int, release: DesiredRelease) -> Rendered:
            chart = await charts.get(release.chart)
            async with limit:
                values_file = write_values(tmp, f"{index:04d}-{release.name}", values[release.key])
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
                log(f"rendering {release.key}")
                manifest = await helm.run(args, release=release.key)
            return Rendered(release, manifest)

        tasks = [asyncio.ensure_future(one(i, r)) for i, r in enumerate(releases)]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
