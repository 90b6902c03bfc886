"""Objects an install or upgrade would create that already exist under another owner.

helm adopts an existing object only when it carries `app.kubernetes.io/managed-by: Helm` and the
annotations `meta.helm.sh/release-name` / `-namespace` naming the release being installed
(pkg/action/validate.go, `existingResourceConflict` and `checkOwnership`, the same in helm 3 and
4); any other existing object makes helm refuse the whole install or upgrade ("exists and cannot
be imported into the current release"). `diff --live` reads each object the plan adds and says so
before apply finds out.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from deployer.kube import Cluster
from deployer.manifests import ResourceKey, parse_manifest

MANAGED_BY = "app.kubernetes.io/managed-by"
RELEASE_NAME = "meta.helm.sh/release-name"
RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"


def owner(live: Mapping[str, Any]) -> str | None:
    """Who holds an existing object, in words; None when helm would adopt it for no release."""
    meta = live.get("metadata") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    name, namespace = annotations.get(RELEASE_NAME), annotations.get(RELEASE_NAMESPACE)
    if name and labels.get(MANAGED_BY) == "Helm":
        return f"release {namespace}/{name}" if namespace else f"release {name}"
    return None


def refusal(live: Mapping[str, Any], release: str, namespace: str) -> str | None:
    """Why helm would refuse to take over `live` for release `namespace/release`; None if it would."""
    meta = live.get("metadata") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    if (
        labels.get(MANAGED_BY) == "Helm"
        and annotations.get(RELEASE_NAME) == release
        and annotations.get(RELEASE_NAMESPACE) == namespace
    ):
        return None
    held = owner(live)
    return f"belongs to {held}" if held else "is not owned by any helm release"


def conflicts(
    cluster: Cluster,
    manifest: str,
    added: Collection[ResourceKey],
    *,
    release: str,
    namespace: str,
    verb: str,
) -> list[str]:
    """One note per object in `added` (keys of `manifest`) that exists and helm would not adopt."""
    notes = []
    for key, doc in sorted(parse_manifest(manifest, namespace).items()):
        if key not in added:
            continue
        live = cluster.live_object(doc, namespace)
        why = None if live is None else refusal(live, release, namespace)
        if why is not None:
            notes.append(
                f"{key} already exists in the cluster and {why}: helm will refuse to {verb} "
                f"{namespace}/{release} (it adopts an object only when its {MANAGED_BY} label is Helm "
                f"and its {RELEASE_NAME}/-namespace annotations name this release)"
            )
    return notes
