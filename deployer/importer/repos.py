"""A helmfile state's repositories as deployer.yaml's, and the repositories a nested state file
brings that no file before it declares (deployer has one repository per name, across all files)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from deployer.importer.findings import WHY_NONE, Finding
from deployer.importer.source import State

Report = Callable[[tuple[str | int, ...], str, str], None]  # (path in the state, what, why)


def repositories(state: State, report: Report) -> list[dict[str, Any]]:
    """Each repository once: helmfile runs `helm repo add` for each entry, so a name declared twice
    ends with the last one's URL (deployer refuses a name declared twice)."""
    out: list[dict[str, Any]] = []
    for i, entry in enumerate(_each(state, report)):
        earlier = next((e for e in out if e["name"] == entry["name"]), None)
        if earlier is None:
            out.append(entry)
            continue
        if earlier["url"].rstrip("/") != entry["url"].rstrip("/"):  # the same URL twice loses nothing
            report(
                ("repositories", i, "name"),
                f"repositories[{entry['name']}]",
                f"declared a second time with url {entry['url']}, which helm keeps (the last `helm repo "
                f"add` wins): written once with that url; check that {earlier['url']} was not the one meant",
            )
        earlier.update(entry)
    return out


def unusable(state: State) -> dict[str, str]:
    """The repositories deployer cannot install from (name -> why), which _each leaves out: a
    release whose chart names one is skipped (importer/charts.py says how to vendor its chart)."""
    out: dict[str, str] = {}
    for repo in state.data.get("repositories") or []:
        if isinstance(repo, dict):
            why = _why_unusable(repo)
            if why:
                out[str(repo.get("name", ""))] = why
    # A name declared again with a usable URL is the one helm keeps (the last `helm repo add`).
    for repo in state.data.get("repositories") or []:
        if isinstance(repo, dict) and not _why_unusable(repo):
            out.pop(str(repo.get("name", "")), None)
    return out


def _url(repo: dict[str, Any]) -> str:
    url = str(repo.get("url") or "")
    return "oci://" + url if repo.get("oci") and url and not url.startswith("oci://") else url


def _why_unusable(repo: dict[str, Any]) -> str | None:
    url = _url(repo)
    if not url:
        if {"chart", "values", "namespace"} & set(repo):
            return (
                "has no url: it reads like a release (chart:, values:) written under repositories:, "
                "which helmfile v1 refuses (a repository has no chart:, namespace: or values:); not "
                "carried over: move it under releases:"
            )
        return "has no url; not carried over: give it the url of its chart repository, or remove it"
    if url.startswith("git+"):
        return (
            f"url {url} is a git source of the helm-git plugin, which deployer does not read; not "
            "carried over: vendor the chart into this repository (write chart: ./path/to/chart), or "
            "publish it to a chart repository (https://...) or an OCI registry (oci://...)"
        )
    if not re.match(r"^(https?|oci)://", url):
        return (
            f"url {url} is neither https://... (a chart repository) nor oci://... (an OCI registry), "
            "which is all deployer installs from; not carried over: write one of those"
        )
    return None


def _each(state: State, report: Report) -> list[dict[str, Any]]:
    out = []
    for i, repo in enumerate(state.data.get("repositories") or []):
        name = str(repo.get("name", ""))
        url = _url(repo)
        why = _why_unusable(repo)
        if why:
            report(("repositories", i, "url" if "url" in repo else "name"), f"repositories[{name}]", why)
            continue
        entry: dict[str, Any] = {"name": name}
        entry["url"] = url
        if repo.get("plainHttp") and url.startswith("oci://"):
            entry["plainHttp"] = True
        if repo.get("username") or repo.get("password"):
            upper = re.sub(r"[^A-Z0-9]", "_", name.upper())
            entry["usernameEnv"] = f"{upper}_USERNAME"
            entry["passwordEnv"] = f"{upper}_PASSWORD"
            report(
                ("repositories", i, "username" if repo.get("username") else "password"),
                f"repositories[{name}] credentials",
                f"deployer never keeps credentials in the spec: it reads ${upper}_USERNAME and "
                f"${upper}_PASSWORD (helmfile's own variables for this repository)",
            )
        for key in sorted(set(repo) - {"name", "url", "oci", "username", "password", "plainHttp"}):
            report(("repositories", i, key), f"repositories[{name}].{key}", WHY_NONE)
        out.append(entry)
    return out


def new_repositories(
    repos: list[dict[str, Any]], declared: dict[str, str], state: State, findings: set[Finding]
) -> list[dict[str, Any]]:
    """The repositories of a nested state that no file before it declares (deployer has one
    repository per name, across all files)."""
    out = []
    for repo in repos:
        name, url = str(repo["name"]), str(repo["url"])
        if declared.get(name) == url:
            continue
        if name in declared:
            findings.add(
                Finding(
                    *state.locate(("repositories",), None),
                    f"repositories[{name}]",
                    f"another file declares repository '{name}' with url {declared[name]}; deployer has one "
                    f"repository per name: kept that one; rename this one ({url}) and its charts",
                )
            )
            continue
        declared[name] = url
        out.append(repo)
    return out
