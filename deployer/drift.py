"""Drift: desired objects against the live ones, through a server-side-apply dry run, so a manual
`kubectl edit` or `kubectl scale` shows up (a diff against helm's stored manifest misses it).

An object the API server refuses as the deployed revision has it (e.g. after a failed upgrade that
changed an immutable field) is reported as `refused`, with the server's reason, not as drift.

The comparison drops what only the server writes and never a user: managedFields, resourceVersion,
generation, uid, creationTimestamp and status, and the fields the release's `ignore:` rules name
(deployer/ignore.py). Secret data is redacted as in every diff.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from deployer.ignore import Rule, strip
from deployer.kube import Cluster, Refused
from deployer.manifests import (
    Ignored,
    ResourceChange,
    ResourceKey,
    is_secret,
    parse_manifest,
    redact_secret,
    to_yaml,
)

SERVER_ONLY_METADATA = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp")


def comparable(obj: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in SERVER_ONLY_METADATA}
    out["metadata"] = meta
    return out


def live_drift(  # noqa: PLR0917
    cluster: Cluster,
    manifest: str,
    namespace: str,
    revision: int,
    rules: Sequence[Rule] = (),
    ignored: Ignored | None = None,
) -> list[ResourceChange]:
    """Each object of the deployed revision that drifted, is missing or is refused; the fields
    `rules` name are left out of the comparison (each difference they hid appended to `ignored`)."""
    changes: list[ResourceChange] = []
    for key, doc in sorted(parse_manifest(manifest, namespace).items()):
        live, applied = cluster.live_and_applied(doc, namespace)
        if applied == "missing":
            changes.append(
                ResourceChange(key, "missing", f"{key} is in the release but not in the cluster\n")
            )
            continue
        if isinstance(applied, Refused):
            changes.append(
                ResourceChange(
                    key,
                    "refused",
                    f"{key}: the API server refuses it as revision {revision} has it: {applied.message}\n",
                )
            )
            continue
        if live is None:
            continue
        before, after = comparable(live), comparable(applied)
        if before != after and rules:
            before, after, hidden = strip(rules, key, before, after)
            if ignored is not None:
                ignored.extend((key, p) for p in hidden)
        if before == after:
            continue
        changes.append(ResourceChange(key, "drifted", _diff(key, before, after)))
    return changes


def _diff(key: ResourceKey, live: dict[str, Any], applied: dict[str, Any]) -> str:
    if is_secret(key):
        live, applied = redact_secret(live), redact_secret(applied, live)
    return "".join(
        difflib.unified_diff(
            to_yaml(live).splitlines(keepends=True),
            to_yaml(applied).splitlines(keepends=True),
            fromfile=f"live: {key}",
            tofile=f"after apply: {key}",
        )
    )
