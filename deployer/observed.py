"""What the cluster has: Helm releases decoded from their storage Secrets. Pure decoding.

Helm stores each revision as Secret `sh.helm.release.v1.<name>.v<rev>` (type helm.sh/release.v1,
labels name, owner=helm, status, version); data key `release` is base64(gzip(JSON)), and the
Kubernetes API base64-encodes it once more. The current revision is the highest `version`.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ENV_LABEL = "deployer-environment"
PROJECT_LABEL = "deployer-project"
RUN_LABEL = "deployer-run"
PENDING = ("pending-install", "pending-upgrade", "pending-rollback")


@dataclass(frozen=True)
class ObservedRelease:
    name: str
    namespace: str
    revision: int
    status: str  # deployed, failed, pending-upgrade, superseded, uninstalling, ...
    chart: str
    chart_version: str
    values: Mapping[str, Any]  # the user-supplied values helm stored (release.config)
    manifest: str
    labels: Mapping[str, str]  # the storage Secret's labels (helm's and --labels)
    description: str
    deployed_at: str
    last_deployed_revision: int | None  # the newest revision whose status is deployed/superseded

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def environment(self) -> str | None:
        return self.labels.get(ENV_LABEL)

    def belongs_to(self, project: str, environment: str) -> bool:
        """Deployed by deployer for this project's environment (the only releases prune may touch)."""
        return self.labels.get(PROJECT_LABEL) == project and self.labels.get(ENV_LABEL) == environment


def decode_release(data: str) -> dict[str, Any]:
    """The release JSON from a Secret's `release` data value as the API returns it."""
    raw = base64.b64decode(base64.b64decode(data))
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    decoded: dict[str, Any] = json.loads(raw)
    return decoded


def current_releases(secrets: Iterable[Mapping[str, Any]]) -> dict[str, ObservedRelease]:
    """The current revision of every release, keyed namespace/name."""
    revisions: dict[str, list[tuple[int, Mapping[str, Any]]]] = {}
    for secret in secrets:
        labels = secret["metadata"].get("labels") or {}
        if labels.get("owner") != "helm" or "release" not in (secret.get("data") or {}):
            continue
        key = f"{secret['metadata']['namespace']}/{labels.get('name')}"
        revisions.setdefault(key, []).append((int(labels.get("version", 0)), secret))
    out: dict[str, ObservedRelease] = {}
    for key, revs in revisions.items():
        revs.sort(key=lambda r: r[0])
        revision, secret = revs[-1]
        release = decode_release(secret["data"]["release"])
        good = [r for r, s in revs if s["metadata"]["labels"].get("status") in ("deployed", "superseded")]
        meta = (release.get("chart") or {}).get("metadata") or {}
        info = release.get("info") or {}
        out[key] = ObservedRelease(
            name=release["name"],
            namespace=release.get("namespace") or secret["metadata"]["namespace"],
            revision=revision,
            status=str(info.get("status") or secret["metadata"]["labels"].get("status", "unknown")),
            chart=str(meta.get("name", "")),
            chart_version=str(meta.get("version", "")),
            values=release.get("config") or {},
            manifest=release.get("manifest") or "",
            labels=dict(secret["metadata"].get("labels") or {}),
            description=str(info.get("description", "")),
            deployed_at=str(info.get("last_deployed", "")),
            last_deployed_revision=good[-1] if good else None,
        )
    return out


@dataclass(frozen=True)
class Revision:
    revision: int
    status: str
    labels: Mapping[str, str]


def histories(secrets: Iterable[Mapping[str, Any]]) -> dict[str, list[Revision]]:
    """Every stored revision of every release, oldest first, from the Secrets' labels alone."""
    out: dict[str, list[Revision]] = {}
    for secret in secrets:
        labels = secret["metadata"].get("labels") or {}
        if labels.get("owner") != "helm":
            continue
        key = f"{secret['metadata']['namespace']}/{labels.get('name')}"
        out.setdefault(key, []).append(
            Revision(int(labels.get("version", 0)), str(labels.get("status")), labels)
        )
    for revs in out.values():
        revs.sort(key=lambda r: r.revision)
    return out
