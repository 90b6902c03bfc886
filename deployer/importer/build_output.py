"""What `helmfile build` prints, as states: one per `#  Source:` file, without what helmfile adds to
every state it prints (its bookkeeping, Go's zero values, each release's automatic labels)."""

from __future__ import annotations

import re
from typing import Any

import yaml

_SOURCE = re.compile(r"^---\n#  Source: (.*)$", re.M)


def unviewed(data: Any, tree: str) -> Any:
    """`data` with each path under the sandbox's `tree` the user's path again (a path a template built
    from PWD, which is the sandbox's directory while helmfile runs)."""
    if isinstance(data, str):
        return data.replace(tree, "/")
    if isinstance(data, list):
        return [unviewed(v, tree) for v in data]
    if isinstance(data, dict):
        return {k: unviewed(v, tree) for k, v in data.items()}
    return data


def documents(stdout: str) -> dict[str, dict[str, Any]]:
    """helmfile build's output, one state per `#  Source:` file; each sub-helmfile's state is printed
    before its parent's."""
    out: dict[str, dict[str, Any]] = {}
    found = list(_SOURCE.finditer(stdout))
    for i, match in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(stdout)
        data = yaml.safe_load(stdout[match.end() : end])
        if isinstance(data, dict):
            out.setdefault(match.group(1).strip(), data)
    if not found:
        for data in yaml.safe_load_all(stdout):
            if isinstance(data, dict):
                return {"": data}
    return out


# What `helmfile build` adds to every state it prints: its own bookkeeping, and each release's
# automatic labels (deployer selects on name, namespace and chart without them).
_BUILD_KEYS = ("filepath", "helmBinary", "kustomizeBinary", "renderedvalues")
# helmDefaults keys helmfile prints only when the file sets them (pointers in its HelmSpec): false
# and 0 are the user's (createNamespace: false, historyMax: 0).
_SET_ONLY = {"createNamespace", "historyMax", "skipSchemaValidation", "takeOwnership", "disableValidation"}


def without_build_defaults(state: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in state.items() if k not in _BUILD_KEYS and not (k == "templates" and not v)}
    if isinstance(out.get("helmDefaults"), dict):  # Go's zero values, printed for every unset key
        out["helmDefaults"] = {
            k: v for k, v in out["helmDefaults"].items() if v not in (False, 0, "", None) or k in _SET_ONLY
        }
    for release in out.get("releases") or []:
        if isinstance(release, dict):
            release.pop("chartPath", None)  # where helmfile prepared the chart for this run
        if not isinstance(release, dict) or not isinstance(release.get("labels"), dict):
            continue
        chart = str(release.get("chart", "")).rstrip("/").rsplit("/", 1)[-1]
        automatic = {"chart": chart, "name": release.get("name"), "namespace": release.get("namespace", "")}
        labels = {k: v for k, v in release["labels"].items() if automatic.get(k, object()) != v}
        if labels:
            release["labels"] = labels
        else:
            del release["labels"]
    return out
