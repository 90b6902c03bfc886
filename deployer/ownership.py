"""Objects an install or upgrade would create that already exist under another owner.

helm adopts an existing object only when it carries `app.kubernetes.io/managed-by: Helm` and the
annotations `meta.helm.sh/release-name` / `-namespace` naming the release being installed
(pkg/action/validate.go, `existingResourceConflict` and `checkOwnership`, the same in helm 3 and
4); any other existing object makes helm refuse the whole install or upgrade ("exists and cannot
be imported into the current release"). `diff --live` reads each object the plan adds and says so
before apply finds out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deployer.kube import Cluster
from deployer.manifests import ResourceKey

MANAGED_BY = "app.kubernetes.io/managed-by"
RELEASE_NAME = "meta.helm.sh/release-name"
RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"


def helm_owner(live: Mapping[str, Any]) -> tuple[str, str] | None:
    """The (namespace, name) of the helm release an existing object is labelled and annotated for
    (namespace "" when that annotation is missing); None when no release holds it."""
    meta = live.get("metadata") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    name = annotations.get(RELEASE_NAME)
    if name and labels.get(MANAGED_BY) == "Helm":
        return str(annotations.get(RELEASE_NAMESPACE) or ""), str(name)
    return None


def refusal(live: Mapping[str, Any], release: str, namespace: str) -> str | None:
    """Why helm would refuse to take over `live` for release `namespace/release`; None if it would."""
    held = helm_owner(live)
    if held == (namespace, release):
        return None
    if held is None:
        return "is not owned by any helm release"
    return f"belongs to release {held[0]}/{held[1]}" if held[0] else f"belongs to release {held[1]}"


def conflicts(
    cluster: Cluster,
    added: Mapping[ResourceKey, Mapping[str, Any]],
    *,
    release: str,
    namespace: str,
    verb: str,
    take_ownership: bool = False,
) -> list[str]:
    """One note per object the plan adds (its manifest documents, by key) that exists and helm
    would not adopt; with takeOwnership (helm --take-ownership skips the check), one per object
    helm will take over from another owner."""
    notes = []
    for key, doc in sorted(added.items()):
        live = cluster.live_object(doc, namespace)
        why = None if live is None else refusal(live, release, namespace)
        if why is not None and take_ownership:
            notes.append(
                f"{key} already exists in the cluster and {why}: helm will take it over (takeOwnership)"
            )
        elif why is not None:
            notes.append(
                f"{key} already exists in the cluster and {why}: helm will refuse to {verb} "
                f"{namespace}/{release} (it adopts an object only when its {MANAGED_BY} label is Helm "
                f"and its {RELEASE_NAME}/-namespace annotations name this release); "
                f"`takeOwnership: true` on the release makes helm adopt it (helm >= 3.17 "
                f"`--take-ownership`)"
                + (", taking it from that release" if why.startswith("belongs") else "")
            )
    return notes
