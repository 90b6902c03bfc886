"""Changes the API server would refuse, found before apply: each object an upgrade changes is
applied as a server-side dry run (`diff --live` only). An immutable field (a StatefulSet's
`volumeClaimTemplates`, a Deployment's `selector`), a value that fails validation or an admission
webhook's denial then shows in the plan, where helm would only fail at apply.

The dry run is a forced server-side apply of the desired object, as Argo CD's server-side diff
does; helm 3 patches with a three-way merge instead, so a field the new manifest drops can make
the two results differ (in either direction): the note says "expected to fail", not "will fail".
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from deployer.kube import Cluster, Refused
from deployer.manifests import ResourceKey, parse_manifest


def refused_changes(
    cluster: Cluster,
    manifest: str,
    changed: Collection[ResourceKey],
    *,
    namespace: str,
    redact: Callable[[str], str],
) -> list[str]:
    """One note per object in `changed` (keys of `manifest`) whose new form the server refuses."""
    notes = []
    for key, doc in sorted(parse_manifest(manifest, namespace).items()):
        if key not in changed:
            continue
        result = cluster.dry_run_apply(doc, namespace)
        if isinstance(result, Refused):
            notes.append(
                f"{key}: the API server refuses this change in a server-side dry run, so the upgrade "
                f"is expected to fail: {redact(result.message)}"
            )
    return notes
