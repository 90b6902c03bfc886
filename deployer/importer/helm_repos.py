"""Charts that name a repository no state file declares (`chart: prometheus-community/prometheus`
with no `repositories:` entry). helmfile hands such a chart to helm, which finds the repository in
the user's own helm repository config; the import does what that helm would, and writes the
repository into the spec (deployer has one repository per name, across all files):

1. a file of the same import that declares the name (helm would have it from that file's `helm repo
   add`);
2. the user's helm repository config, read here, as helm finds it ($HELM_REPOSITORY_CONFIG, else
   repositories.yaml in helm's config home): the sandbox helmfile runs in has an empty helm home;
3. a short table of well-known public chart repositories, each URL checked against its project's
   own documentation.

Each is a note at the chart's file:line saying where the URL came from; a name found nowhere stays a
loss (importer/charts.py says what to write)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from deployer.importer.charts import repository_of
from deployer.importer.findings import Finding, Kept
from deployer.importer.repos import unusable
from deployer.importer.source import Source, State

# The URL each project documents for `helm repo add NAME URL` (checked December 2026).
WELL_KNOWN = {
    "bitnami": "https://charts.bitnami.com/bitnami",  # charts.bitnami.com
    "grafana": "https://grafana.github.io/helm-charts",  # grafana.github.io/helm-charts
    "ingress-nginx": "https://kubernetes.github.io/ingress-nginx",  # kubernetes/ingress-nginx
    "jetstack": "https://charts.jetstack.io",  # cert-manager.io/docs/installation/helm
    "prometheus-community": "https://prometheus-community.github.io/helm-charts",
    "stable": "https://charts.helm.sh/stable",  # helm: "try https://charts.helm.sh/stable instead"
    "vmware-tanzu": "https://vmware-tanzu.github.io/helm-charts",  # vmware-tanzu.github.io/helm-charts
}

# Settings of a helm config entry that the import never copies into the spec.
_NOT_COPIED = ("username", "password", "certFile", "keyFile", "caFile", "insecure_skip_tls_verify")


def repository_config(environ: Mapping[str, str], platform: str = sys.platform) -> Path:
    """The repositories.yaml helm reads: $HELM_REPOSITORY_CONFIG, else `repositories.yaml` in
    $HELM_CONFIG_HOME, else in `helm` under $XDG_CONFIG_HOME or the platform's config directory
    (helm's pkg/helmpath: ~/.config on Linux, ~/Library/Preferences on macOS, %APPDATA% on Windows)."""
    if environ.get("HELM_REPOSITORY_CONFIG"):
        return Path(environ["HELM_REPOSITORY_CONFIG"])
    if environ.get("HELM_CONFIG_HOME"):
        return Path(environ["HELM_CONFIG_HOME"]) / "repositories.yaml"
    base = environ.get("XDG_CONFIG_HOME")
    if not base:
        home = Path(environ.get("HOME") or Path.home())
        if platform == "darwin":
            base = str(home / "Library" / "Preferences")
        elif platform.startswith("win"):
            base = environ.get("APPDATA") or str(home)
        else:
            base = str(home / ".config")
    return Path(base) / "helm" / "repositories.yaml"


def user_repositories(environ: Mapping[str, str]) -> tuple[Path, dict[str, dict[str, Any]]]:
    """The helm repository config's path and its entries by name (none when it is missing or
    unreadable: helm then knows no repository either)."""
    path = repository_config(environ)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return path, {}
    entries = data.get("repositories") if isinstance(data, dict) else None
    out: dict[str, dict[str, Any]] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("name") and entry.get("url"):
            out[str(entry["name"])] = entry
    return path, out


def supply(sources: Sequence[Source], environ: Mapping[str, str] | None = None) -> list[Finding]:
    """Each undeclared repository a release's chart names, added to its state file's repositories
    (every environment's state) where one of the three sources knows it; the report's notes."""
    env = os.environ if environ is None else environ
    declared: dict[str, tuple[str, str]] = {}  # name -> (url, the file that declares it)
    for source in sources:
        for state in source.states.values():
            left_out = unusable(state)
            for repo in _repos(state):
                name = str(repo.get("name", ""))
                if name and repo.get("url") and name not in left_out:
                    declared.setdefault(name, (str(repo["url"]), source.shown))
            break
    config: tuple[Path, dict[str, dict[str, Any]]] | None = None
    findings: list[Finding] = []
    for source in sources:
        added: dict[str, str] = {}  # a release of one environment only needs it too: every state gets it
        for state in source.states.values():
            own = {str(r.get("name", "")) for r in _repos(state)}
            for i, release in enumerate(state.data.get("releases") or []):
                if not isinstance(release, Mapping):
                    continue
                chart = str(release.get("chart") or "")
                prefix = repository_of(chart, source.base_dir)
                if prefix is None or prefix in own:
                    continue
                if config is None:
                    config = user_repositories(env)
                found = _find(prefix, source, declared, config)
                if found is None:
                    continue  # a loss, as importer/charts.py reports it
                url, whence, entry = found
                added.setdefault(prefix, url)
                at = state.locate(("releases", i, "chart"), str(release.get("name", "")))
                findings += _lines(at, str(release.get("name", "")), chart, prefix, url, whence, entry)
        for state in source.states.values():
            own = {str(r.get("name", "")) for r in _repos(state)}
            extra = [{"name": n, "url": u} for n, u in added.items() if n not in own]
            if extra:
                state.data["repositories"] = [*_repos(state), *extra]
    return sorted(set(findings))


def _repos(state: State) -> list[dict[str, Any]]:
    repos = state.data.get("repositories")
    return [r for r in repos if isinstance(r, dict)] if isinstance(repos, list) else []


def _find(
    prefix: str,
    source: Source,
    declared: Mapping[str, tuple[str, str]],
    config: tuple[Path, Mapping[str, dict[str, Any]]],
) -> tuple[str, str, dict[str, Any] | None] | None:
    """(url, where it came from, the helm config entry) for an undeclared repository name."""
    if prefix in declared and declared[prefix][1] != source.shown:
        url, where = declared[prefix]
        return url, f"declared in {where} (deployer has one repository per name, across files)", None
    path, entries = config
    if prefix in entries:
        return str(entries[prefix]["url"]), f"from your helm repository config ({path})", entries[prefix]
    if prefix in WELL_KNOWN:
        return WELL_KNOWN[prefix], "from deployer's table of well-known public chart repositories", None
    return None


def _lines(  # noqa: PLR0917 (one report line's parts)
    at: tuple[str, int],
    release: str,
    chart: str,
    prefix: str,
    url: str,
    whence: str,
    entry: Mapping[str, Any] | None,
) -> list[Finding]:
    what = f"releases[{release}].chart"
    out = [
        Finding(
            *at,
            what,
            Kept(
                f"chart {chart} names the repository '{prefix}', which no state file declares (helmfile "
                f"leaves it to helm's own repository config): written under repositories: as {prefix} "
                f"with url {url}, {whence}; check that it is the repository you deploy from"
            ),
        )
    ]
    given = {k for k in _NOT_COPIED if entry and entry.get(k) not in (None, "", False)}
    stem = "DEPLOYER_REPO_" + re.sub(r"[^A-Z0-9]", "_", prefix.upper())
    if given & {"username", "password"}:
        out.append(
            Finding(
                *at,
                f"repositories[{prefix}]",
                Kept(
                    "your helm config gives it credentials, which the import never copies: deployer "
                    f"reads them from ${stem}_USERNAME and ${stem}_PASSWORD (or the variables its "
                    "usernameEnv/passwordEnv name)"
                ),
            )
        )
    tls = sorted(given - {"username", "password"})
    if tls:
        out.append(
            Finding(
                *at,
                f"repositories[{prefix}]",
                f"your helm config gives it {', '.join(tls)}; deployer has no per-repository TLS "
                "settings: not carried over (trust its certificate authority system-wide)",
            )
        )
    return out
