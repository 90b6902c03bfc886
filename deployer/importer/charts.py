"""A helmfile release's chart and version as deployer.yaml names them, or why it cannot: each
problem says what the chart is and what to write instead. Pure but for looking at local paths."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from deployer.importer.findings import Kept
from deployer.importer.markers import EnvMarkers
from deployer.semver import is_exact

_GO_GETTER = re.compile(r"^(git::|s3::|gcs::|hg::|https?::|git@|github\.com/|bitbucket\.org/)|\?ref=|//")
_PACKAGED_URL = re.compile(r"^(https?://\S*/)([^/]+?)-(v?\d+\.\d+\.\d+[^/]*?)\.tgz$")


def chart(
    name: str, base_dir: Path, out_dir: Path, repos: set[str], unusable: Mapping[str, str] | None = None
) -> tuple[str | None, str | None]:
    """(the chart for deployer.yaml, or None when the release is skipped; the report's text).
    `unusable`: the repositories the import left out (name -> why), whose charts cannot be installed."""
    if not name:
        return None, "no chart; release skipped"
    prefix = name.split("/", maxsplit=1)[0]
    if unusable and prefix in unusable and name.count("/") == 1 and not (base_dir / name).exists():
        return None, (
            f"chart {name} comes from repository '{prefix}', which the import left out (see its line); "
            f"release skipped: vendor the chart into this repository (e.g. its directory from the source "
            f"the repository names) and write chart: ./path/to/chart, or publish it to a chart repository "
            f"or OCI registry and declare that under repositories:, then add the release"
        )
    if name.startswith("oci://"):
        return name, None
    local_form = name.startswith(("./", "../", "/"))
    packaged = _PACKAGED_URL.match(name)
    if packaged:
        return None, (
            f"chart URL {name} is a packaged chart (.tgz) fetched over HTTP; deployer installs charts "
            f"from a repository: release skipped. Declare the repository that serves it (url: "
            f"{packaged.group(1)}) under repositories: and write chart: REPO/{packaged.group(2)} "
            f"with version: {packaged.group(3)}"
        )
    if _GO_GETTER.search(name) and not local_form:
        return None, (
            f"go-getter chart URL '{name}' is not supported; release skipped: vendor the chart into "
            "this repository and write chart: ./path/to/chart, or publish it to a chart repository"
        )
    local = (base_dir / name).resolve()
    if not local_form and not local.exists() and name.count("/") == 1 and prefix not in repos:
        return None, (
            f"chart {name} names the repository '{prefix}', which is not declared under repositories:; "
            f"release skipped: add - name: {prefix} with its url under repositories: in deployer.yaml "
            "(and a version: to the release), then add the release"
        )
    if local_form or local.is_dir() or prefix not in repos:
        if not (local / "Chart.yaml").is_file():
            return None, (
                f"local chart {name} not found (no Chart.yaml there); release skipped: commit the chart "
                f"at {name}, or write the chart's repository and name (chart: REPO/NAME with version:), "
                "then add the release"
            )
        rel = os.path.relpath(local, out_dir)
        return (rel if rel.startswith(("../", "/")) else f"./{rel}"), None
    return name, None


def repository_of(name: str, base_dir: Path) -> str | None:
    """The repository a chart names as REPO/NAME (helm looks REPO up in its repository config), or
    None when the chart is something else: a local directory, oci://, a URL, a go-getter source."""
    if name.count("/") != 1 or name.startswith(("./", "../", "/")) or (base_dir / name).exists():
        return None
    if _PACKAGED_URL.match(name) or _GO_GETTER.search(name):
        return None
    prefix = name.split("/", maxsplit=1)[0]
    return prefix or None


def version(name: str, versions: Mapping[str, str | None], overlay_key: str) -> tuple[str | None, str | None]:
    """(the version every environment shares, or None when one has none; the report's text). A
    version differs per environment when it comes from a lock file per environment (helmfile build
    applies it), and an environment never gets another's."""
    unversioned = [env for env, v in versions.items() if not v]
    problem = None
    if unversioned and not name.startswith((".", "/")):
        where = "" if len(unversioned) == len(versions) else f" in environment(s) {', '.join(unversioned)}"
        also = f" or under environments.<env>.releases.{overlay_key}" if where else ""
        problem = Kept(
            f"no chart version{where} (helmfile installs the latest there): so does deployer; run "
            f"`deployer lock` to pin it in deployer.lock.yaml, or write version: in deployer.yaml{also}"
        )
    ranges = sorted({v for v in versions.values() if v and not is_exact(v)})
    if ranges and not name.startswith((".", "/")) and not problem:
        shown = ", ".join(f"'{r}'" for r in ranges)
        problem = Kept(
            f"chart version {shown} is a range: carried over as it is (deployer reads ranges as helm "
            "does); run `deployer lock` to resolve it into deployer.lock.yaml, which validate, diff and "
            "apply then read"
        )
    return (None if unversioned else next(iter(versions.values()))), problem


def chart_from(
    markers: EnvMarkers,
    written: str,
    *,
    base_dir: Path,
    out_dir: Path,
    repos: set[str],
    unusable: Mapping[str, str] | None = None,
) -> tuple[str | None, str | None]:
    """`chart` of a release's chart as helmfile resolved it; one read from a variable (a marker) is
    checked as helmfile resolves it with the variable unset, and written as ${VAR:-default} when
    deployer names it the same way (a repository's or an OCI chart), else frozen at that value."""
    if not markers.found_in(written):
        return chart(written, base_dir, out_dir, repos, unusable)
    shown = markers.restore(written)
    unset = markers.unset(written)
    if unset is None:  # requiredEnv: no value to check; deployer reads it when it reads the spec
        return written, Kept(
            f"the chart is read from {shown}: carried over as it is, unchecked (the import has no "
            "value for it); a chart it names from a repository needs that repository under "
            "repositories:"
        )
    found, problem = chart(unset, base_dir, out_dir, repos, unusable)
    if found is None or problem:
        return found, problem
    if found == unset:
        return written, Kept(
            f"the chart is read from {shown}: carried over as it is (deployer interpolates chart:); "
            "a chart it names from another repository needs that repository under repositories:"
        )
    return found, (
        f"the chart is read from {shown}, a local chart: deployer.yaml names it relative to "
        f"itself ({found}), so it is frozen at that value; to change it, edit chart: (per "
        "environment under environments.<env>.releases)"
    )


def version_from(
    markers: EnvMarkers, name: str, versions: Mapping[str, str | None], overlay_key: str
) -> tuple[str | None, str | None]:
    """`version` of a release's versions per environment as helmfile resolved them; one read from a
    variable (a marker) is checked as helmfile resolves it with the variable unset, and written as
    ${VAR:-default} (deployer interpolates version:)."""
    chart = markers.unset(name) or name
    if not any(v and markers.found_in(v) for v in versions.values()):
        return version(chart, versions, overlay_key)
    unset = {e: markers.unset(v) if v else v for e, v in versions.items()}
    checked = {e: v for e, v in unset.items() if v is not None or not versions[e]}
    _, problem = version(chart, checked, overlay_key) if checked else (None, None)
    return (None if any(not v for v in versions.values()) else next(iter(versions.values()))), problem
