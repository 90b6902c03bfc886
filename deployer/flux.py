"""One environment as Flux objects (pull mode): sources, one HelmRelease per release, and a Secret per
release whose values are sensitive. Pure: desired releases and merged values in, objects out.

Rules (docs/flux.md says why):
- `releaseName`, `targetNamespace` and `storageNamespace` are always set, so Flux adopts the release
  `deployer apply` installed instead of installing a second copy.
- Values are deployer's fully merged values, inline: Flux never re-merges deployer's layers.
  Sensitive leaves go to a Secret referenced by `valuesFrom` instead; Flux merges valuesFrom first,
  then the inline values over it (maps recursively, anything else replaced), which gives back
  exactly the merged values.
- Local charts come from one GitRepository with `reconcileStrategy: ChartVersion`: Flux then keeps
  the chart's own version (Revision would make it `1.2.0+<commit>`), and a chart edit needs a
  version bump to reach the cluster.
- Repository charts come from a HelmRepository per repository (`type: oci` for OCI registries, so
  the chart keeps its exact version: an OCIRepository `chartRef` appends the artifact digest to it).
- `atomic` = remediation by uninstall (install) and rollback (upgrade) on the last failure; helm's
  atomic implies wait, so only `wait: false` without `atomic` disables waiting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deployer.graph import topological_order
from deployer.observed import ENV_LABEL, PROJECT_LABEL
from deployer.project import ChartRef, DesiredRelease
from deployer.secrets import is_sensitive

HELM_API = "helm.toolkit.fluxcd.io/v2"
SOURCE_API = "source.toolkit.fluxcd.io/v1"
VALUES_KEY = "values.yaml"
# Sources first, then what uses them; a reader and `kubectl apply` both meet the objects in this order.
KIND_ORDER = {"GitRepository": 0, "HelmRepository": 1, "Secret": 2, "HelmRelease": 3}


@dataclass(frozen=True)
class GitSource:
    url: str
    ref: str  # a branch name, refs/... (a full ref name), or a 40-hex commit
    paths: Mapping[str, str]  # local chart directory (absolute) -> its path in the repository (./x)


@dataclass(frozen=True)
class FluxOptions:
    project: str
    environment: str
    namespace: str = "flux-system"  # where the Flux objects live (sources, HelmReleases, Secrets)
    interval: str = "10m"
    git: GitSource | None = None  # required when a release has a local chart


@dataclass
class FluxExport:
    objects: list[dict[str, Any]] = field(default_factory=list)  # to commit: sources, HelmReleases
    secrets: list[dict[str, Any]] = field(default_factory=list)  # never in clear in Git
    omitted: list[str] = field(default_factory=list)  # keys of releases with installed: false
    warnings: list[str] = field(default_factory=list)


def _flags(spec: dict[str, Any], release: DesiredRelease) -> list[str]:
    """helm's release flags as the HelmRelease fields helm-controller passes them to helm with."""
    flags = release.flags
    if not flags.create_namespace:
        spec["install"]["createNamespace"] = False
    if flags.history_max is not None:
        spec["maxHistory"] = flags.history_max
    for action in ("install", "upgrade", "rollback", "uninstall") if flags.disable_hooks else ():
        spec.setdefault(action, {})["disableHooks"] = True
    for action in ("install", "upgrade") if flags.skip_schema_validation else ():
        spec[action]["disableSchemaValidation"] = True
    for action in ("upgrade", "rollback") if flags.force else ():
        spec.setdefault(action, {})["force"] = True
    for action in ("upgrade", "rollback") if flags.cleanup_on_fail else ():
        spec.setdefault(action, {})["cleanupOnFail"] = True
    warnings = []
    if flags.take_ownership:
        warnings.append(
            f"{release.key}: takeOwnership has no HelmRelease field; helm-controller will not adopt objects"
        )
    if release.chart.keyring:
        warnings.append(
            f"{release.key}: verify (PGP provenance) has no Flux equivalent (Flux verifies OCI charts with "
            "cosign or notation: HelmChart spec.verify); the exported release is not verified"
        )
    return warnings


def export_flux(
    releases: Sequence[DesiredRelease], values: Mapping[str, Mapping[str, Any]], options: FluxOptions
) -> FluxExport:
    """The Flux objects of one environment's releases (`values`: merged values by release key)."""
    out = FluxExport()
    installed = [r for r in releases if r.installed]
    out.omitted = sorted(r.key for r in releases if not r.installed)
    names = hr_names(installed)
    sources: dict[tuple[str, str], dict[str, Any]] = {}
    by_key = {r.key: r for r in installed}
    for key in topological_order(list(by_key), {r.key: r.needs for r in installed}):
        release = by_key[key]
        chart, source = _chart(release.chart, options)
        if source is not None:
            sources[(source["kind"], source["metadata"]["name"])] = source
        inline, secret = split_sensitive(values[key], release.sensitive)
        name = names[key]
        spec: dict[str, Any] = {
            "interval": options.interval,
            "releaseName": release.name,
            "targetNamespace": release.namespace,
            "storageNamespace": release.namespace,
            "chart": {"spec": chart},
            "timeout": f"{release.timeout}s",
            "install": {"createNamespace": True},
            "upgrade": {},
        }
        depends = []
        for need in release.needs:
            if need in names:
                depends.append({"name": names[need], "namespace": options.namespace})
            else:
                out.warnings.append(f"{key} needs {need}, which is not installed here: no dependsOn for it")
        if depends:
            spec["dependsOn"] = depends
        if release.atomic:
            spec["install"]["remediation"] = {"retries": 0, "remediateLastFailure": True}
            spec["upgrade"]["remediation"] = {
                "retries": 0,
                "remediateLastFailure": True,
                "strategy": "rollback",
            }
        elif not release.wait:
            for action in ("install", "upgrade", "rollback"):
                spec.setdefault(action, {})["disableWait"] = True
        out.warnings.extend(_flags(spec, release))
        if not spec["upgrade"]:
            del spec["upgrade"]
        if secret:
            secret_name = f"{name}-values"
            spec["valuesFrom"] = [{"kind": "Secret", "name": secret_name, "valuesKey": VALUES_KEY}]
            out.secrets.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": _metadata(secret_name, options, {}),
                    "type": "Opaque",
                    "stringData": {VALUES_KEY: secret},  # the caller writes it as YAML text
                }
            )
        spec["values"] = inline
        out.objects.append(
            {
                "apiVersion": HELM_API,
                "kind": "HelmRelease",
                "metadata": _metadata(name, options, release.labels),
                "spec": spec,
            }
        )
    if any(r.chart.kind == "local" for r in installed):
        out.warnings.append(
            "local charts are exported with reconcileStrategy: ChartVersion: Flux upgrades a release "
            "when its chart's version changes, so bump the version in Chart.yaml with every chart edit"
        )
    out.objects = sorted(sources.values(), key=_order) + out.objects
    return out


def hr_names(releases: Sequence[DesiredRelease]) -> dict[str, str]:
    """HelmRelease names (all in one namespace): the release name, or namespace-name when two
    releases of the environment share a name."""
    counts: dict[str, int] = {}
    for r in releases:
        counts[r.name] = counts.get(r.name, 0) + 1
    return {r.key: r.name if counts[r.name] == 1 else f"{r.namespace}-{r.name}" for r in releases}


def split_sensitive(
    values: Mapping[str, Any], sensitive: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(inline, secret): the values without their sensitive leaves, and those leaves alone.

    merge(secret, inline) (Flux's order: valuesFrom, then inline values) == values. A map emptied by
    the split is dropped from `inline`; a map that was empty already stays.
    """

    def walk(node: Mapping[str, Any], prefix: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
        inline: dict[str, Any] = {}
        secret: dict[str, Any] = {}
        for key, value in node.items():
            path = (*prefix, str(key))
            if value is not None and is_sensitive(path, sensitive):
                secret[key] = value
            elif isinstance(value, Mapping) and value:
                sub_inline, sub_secret = walk(value, path)
                if sub_inline or not sub_secret:
                    inline[key] = sub_inline
                if sub_secret:
                    secret[key] = sub_secret
            else:
                inline[key] = value
        return inline, secret

    return walk(values, ())


def _chart(chart: ChartRef, options: FluxOptions) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The HelmRelease's chart template and the source object it refers to."""
    if chart.kind == "local":
        git = options.git
        assert git is not None, "a local chart needs FluxOptions.git"
        name = source_name(options.project)
        source = {
            "apiVersion": SOURCE_API,
            "kind": "GitRepository",
            "metadata": _metadata(name, options, {}),
            "spec": {"interval": options.interval, "url": git.url, "ref": git_ref(git.ref)},
        }
        spec: dict[str, Any] = {
            "chart": git.paths[chart.ref],
            "reconcileStrategy": "ChartVersion",
            "sourceRef": {"kind": "GitRepository", "name": name, "namespace": options.namespace},
            "interval": options.interval,
        }
        return spec, source
    if chart.kind == "oci":
        url = chart.repository_url or chart.ref.rstrip("/").rsplit("/", 1)[0]
        name = source_name(chart.repository or url.removeprefix("oci://"))
        repo_spec: dict[str, Any] = {"interval": options.interval, "type": "oci", "url": url.rstrip("/")}
        if chart.plain_http:
            repo_spec["insecure"] = True
    else:
        assert chart.repository is not None and chart.repository_url is not None
        name = source_name(chart.repository)
        repo_spec = {"interval": options.interval, "url": chart.repository_url}
    source = {
        "apiVersion": SOURCE_API,
        "kind": "HelmRepository",
        "metadata": _metadata(name, options, {}),
        "spec": repo_spec,
    }
    spec = {
        "chart": chart.name,
        "version": chart.version,
        "sourceRef": {"kind": "HelmRepository", "name": name, "namespace": options.namespace},
        "interval": options.interval,
    }
    return spec, source


def git_ref(ref: str) -> dict[str, str]:
    if re.fullmatch(r"[0-9a-f]{40}", ref):
        return {"commit": ref}
    if ref.startswith("refs/"):
        return {"name": ref}
    return {"branch": ref}


def source_name(text: str) -> str:
    """A DNS-1123 name from a repository name or URL (Flux object names must be one)."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return name[:63].rstrip("-") or "charts"


def _metadata(name: str, options: FluxOptions, labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": options.namespace,
        "labels": {**labels, PROJECT_LABEL: options.project, ENV_LABEL: options.environment},
    }


def _order(obj: Mapping[str, Any]) -> tuple[int, str]:
    return KIND_ORDER.get(obj["kind"], 9), obj["metadata"]["name"]
