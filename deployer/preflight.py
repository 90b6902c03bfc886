"""Changes the API server would refuse, found before apply: each object an upgrade changes is
applied as a server-side dry run (`diff --live` only). An immutable field (a StatefulSet's
`volumeClaimTemplates`, a Deployment's `selector`), a value that fails validation or an admission
webhook's denial then shows in the plan, where helm would only fail at apply.

The dry run is a forced server-side apply of the desired object, as Argo CD's server-side diff
does. helm 4 upgrades a release it applied server-side the same way, so then every refusal is
reported. helm 3 (and helm 4 on a release applied client-side) patches with a three-way strategic
merge instead, whose result can differ: a Deployment switched to `strategy: Recreate` keeps its
defaulted `rollingUpdate` under a server-side apply (refused) but not under helm 3's patch
(accepted). So with a client-side patch only refusals of an immutable field are reported: those
do not depend on how the change is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from deployer.kube import Cluster, Refused
from deployer.manifests import ResourceKey

# How the API server words a change to a field that cannot change (apimachinery's
# ValidateImmutableField, the StatefulSet and PersistentVolumeClaim spec rules, a Service's clusterIP).
IMMUTABLE = (
    "field is immutable",
    "updates to statefulset spec for fields other than",
    "is immutable after creation",
    "may not change once set",
)

# helm's force (helm 3 `--force`, helm 4 `--force-replace`) replaces an object with a PUT
# (pkg/kube/client.go replaceResource), which validation refuses like a patch (helm issues 7168,
# 7173): only an object deleted first is created anew with the new field.
REMEDY = (
    " (`force: true` on the release does not get past it: helm 3 `--force` and helm 4 "
    "`--force-replace` replace the object in place, which the server refuses the same way; delete "
    "the object before the apply, and helm creates it anew)"
)


def refused_changes(
    cluster: Cluster,
    changed: Mapping[ResourceKey, Mapping[str, Any]],
    *,
    namespace: str,
    server_side: bool,
    redact: Callable[[str], str],
) -> list[str]:
    """One note per object an upgrade changes (its new manifest documents, by key) whose new form
    the server refuses; with `server_side` False (helm's client-side patch), only refusals of an
    immutable field."""
    notes = []
    for key, doc in sorted(changed.items()):
        result = cluster.dry_run_apply(doc, namespace)
        if not isinstance(result, Refused):
            continue
        immutable = any(m in result.message for m in IMMUTABLE)
        if server_side or immutable:
            notes.append(
                f"{key}: the API server refuses this change in a server-side dry run, so the upgrade "
                f"is expected to fail: {redact(result.message)}" + (REMEDY if immutable else "")
            )
    return notes
