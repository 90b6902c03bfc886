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
        same = earlier["url"].rstrip("/") == entry["url"].rstrip("/")
        report(
            ("repositories", i, "name"),
            f"repositories[{entry['name']}]",
            "declared a second time"
            + ("" if same else f" with url {entry['url']}, which helm keeps (the last `helm repo add` wins)")
            + ": written once",
        )
        earlier.update(entry)
    return out


def _each(state: State, report: Report) -> list[dict[str, Any]]:
    out = []
    for i, repo in enumerate(state.data.get("repositories") or []):
        name = str(repo.get("name", ""))
        url = str(repo.get("url", ""))
        entry: dict[str, Any] = {"name": name}
        if repo.get("oci") and not url.startswith("oci://"):
            url = "oci://" + url
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
