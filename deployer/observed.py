"""What the cluster has: Helm releases decoded from their storage Secrets (or ConfigMaps). Pure decoding.

Helm stores each revision as Secret `sh.helm.release.v1.<name>.v<rev>` (type helm.sh/release.v1,
labels name, owner=helm, status, version); data key `release` is base64(gzip(JSON)), and the
Kubernetes API base64-encodes it once more. With HELM_DRIVER=configmap the same record is a
ConfigMap of the same name and labels, whose `release` is that base64(gzip(JSON)) as plain text (a
ConfigMap's data is not base64-encoded by the API): helm's pkg/storage/driver/cfgmaps.go. The
current revision is the highest `version`.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from deployer.manifests import flux_owner, join_documents, split_documents

ENV_LABEL = "deployer-environment"
PROJECT_LABEL = "deployer-project"
RUN_LABEL = "deployer-run"


class Status(StrEnum):
    """A Helm release revision's status (helm's release.Status)."""

    UNKNOWN = "unknown"
    DEPLOYED = "deployed"
    UNINSTALLED = "uninstalled"
    SUPERSEDED = "superseded"
    FAILED = "failed"
    UNINSTALLING = "uninstalling"
    PENDING_INSTALL = "pending-install"
    PENDING_UPGRADE = "pending-upgrade"
    PENDING_ROLLBACK = "pending-rollback"

    @classmethod
    def parse(cls, text: str) -> Status:
        try:
            return cls(text)
        except ValueError:
            return cls.UNKNOWN


PENDING = (Status.PENDING_INSTALL, Status.PENDING_UPGRADE, Status.PENDING_ROLLBACK)
DEPLOYED_ONCE = (Status.DEPLOYED, Status.SUPERSEDED)


@dataclass(frozen=True)
class ObservedRelease:
    name: str
    namespace: str
    revision: int
    status: Status
    chart: str
    chart_version: str
    values: Mapping[str, Any]  # the user-supplied values helm stored (release.config)
    manifest: str
    labels: Mapping[str, str]  # the storage Secret's labels (helm's and --labels)
    description: str
    deployed_at: str
    last_deployed_revision: int | None  # the newest revision whose status is deployed/superseded
    hooks: str = ""  # the stored hooks' manifests, tests included, written like `manifest`
    crds: Mapping[str, str] = field(default_factory=dict)  # the chart's crds/ files: path -> sha256
    flux_owner: str | None = None  # namespace/name of the HelmRelease that manages it (Flux)
    # How helm 4 applied it: "ssa" (server-side apply) or "csa"; "" from helm 3, which always
    # patches client-side. helm 4 upgrades the same way as the release was last applied.
    apply_method: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def environment(self) -> str | None:
        return self.labels.get(ENV_LABEL)

    def belongs_to(self, project: str, environment: str) -> bool:
        """Deployed by deployer for this project's environment (the only releases prune may touch)."""
        return self.labels.get(PROJECT_LABEL) == project and self.labels.get(ENV_LABEL) == environment


def decode_release(data: str, kind: str = "Secret") -> dict[str, Any]:
    """The release JSON from a Secret's (or a ConfigMap's) `release` data value as the API returns it."""
    raw = base64.b64decode(data)
    if kind != "ConfigMap":
        raw = base64.b64decode(raw)
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    decoded: dict[str, Any] = json.loads(raw)
    return decoded


def release_chart(secret: Mapping[str, Any]) -> tuple[str, str] | None:
    """The chart name and version a release record stores, or None when it cannot be decoded."""
    try:
        release = decode_release(secret["data"]["release"], str(secret.get("kind") or "Secret"))
        meta = (release.get("chart") or {}).get("metadata") or {}
        return str(meta.get("name", "")), str(meta.get("version", ""))
    except (ValueError, OSError, EOFError, KeyError, TypeError, AttributeError):
        return None


def unreadable_note(what: str) -> str:
    """The note every reader of release records gives for one it left out."""
    return f"note: helm release record {what} cannot be read (not written by helm): left out"


def _revision(key: str, labels: Mapping[str, Any], unreadable: list[str] | None) -> int | None:
    """A record's revision (its `version` label), or None, noted in `unreadable`, when it is not one."""
    try:
        return int(labels.get("version", 0))
    except (TypeError, ValueError):
        if unreadable is not None:
            unreadable.append(
                f"{key} (version label {str(labels.get('version'))!r} is not a revision number)"
            )
        return None


def current_releases(
    secrets: Iterable[Mapping[str, Any]], unreadable: list[str] | None = None
) -> dict[str, ObservedRelease]:
    """The current revision of every release, keyed namespace/name. A record helm could not have
    written (not base64/gzip/JSON: another tool's Secret labelled owner=helm) is left out, its key and
    why added to `unreadable`: one such Secret anywhere in the cluster must not stop every plan."""
    revisions: dict[str, list[tuple[int, Mapping[str, Any]]]] = {}
    for secret in secrets:
        labels = secret["metadata"].get("labels") or {}
        if labels.get("owner") != "helm" or "release" not in (secret.get("data") or {}):
            continue
        key = f"{secret['metadata']['namespace']}/{labels.get('name')}"
        revision = _revision(key, labels, unreadable)
        if revision is not None:
            revisions.setdefault(key, []).append((revision, secret))
    out: dict[str, ObservedRelease] = {}
    for key, revs in revisions.items():
        revs.sort(key=lambda r: r[0])
        revision, secret = revs[-1]
        try:
            release = decode_release(secret["data"]["release"], str(secret.get("kind") or "Secret"))
            if not isinstance(release, dict) or "name" not in release:
                raise KeyError("name")
        except (ValueError, OSError, EOFError, KeyError, TypeError) as exc:  # binascii/gzip/JSON errors
            if unreadable is not None:
                unreadable.append(f"{key} (revision {revision}: {type(exc).__name__}: {exc})")
            continue
        good = [r for r, s in revs if s["metadata"]["labels"].get("status") in DEPLOYED_ONCE]
        meta = (release.get("chart") or {}).get("metadata") or {}
        info = release.get("info") or {}
        manifest = join_documents(split_documents(release.get("manifest") or ""))
        out[key] = ObservedRelease(
            name=release["name"],
            namespace=release.get("namespace") or secret["metadata"]["namespace"],
            revision=revision,
            status=Status.parse(str(info.get("status") or secret["metadata"]["labels"].get("status", ""))),
            chart=str(meta.get("name", "")),
            chart_version=str(meta.get("version", "")),
            values=release.get("config") or {},
            manifest=manifest,
            labels=dict(secret["metadata"].get("labels") or {}),
            description=str(info.get("description", "")),
            deployed_at=str(info.get("last_deployed", "")),
            last_deployed_revision=good[-1] if good else None,
            hooks=stored_hooks(release.get("hooks") or []),
            crds=stored_crds(release.get("chart") or {}),
            flux_owner=flux_owner(manifest),
            apply_method=str(release.get("apply_method") or ""),
        )
    return out


def stored_hooks(hooks: Iterable[Mapping[str, Any]]) -> str:
    """A release's hooks as one manifest, in the order helm stored (and `helm template` prints) them."""
    return join_documents(
        [f"# Source: {h.get('path', '')}\n{str(h.get('manifest') or '').strip()}" for h in hooks]
    )


def stored_crds(chart: Mapping[str, Any]) -> dict[str, str]:
    """The digests of the `crds/` files of the chart a release was installed from (helm keeps the
    chart's files, base64, in the release)."""
    out = {}
    for item in chart.get("files") or []:
        name = str(item.get("name", ""))
        if name.startswith("crds/"):
            out[name] = hashlib.sha256(base64.b64decode(item.get("data") or "")).hexdigest()
    return out


@dataclass(frozen=True)
class Revision:
    revision: int
    status: str
    labels: Mapping[str, str]


def histories(
    secrets: Iterable[Mapping[str, Any]], unreadable: list[str] | None = None
) -> dict[str, list[Revision]]:
    """Every stored revision of every release, oldest first, from the Secrets' labels alone (one
    whose `version` label is not a number is left out, its key and why added to `unreadable`)."""
    out: dict[str, list[Revision]] = {}
    for secret in secrets:
        labels = secret["metadata"].get("labels") or {}
        if labels.get("owner") != "helm":
            continue
        key = f"{secret['metadata']['namespace']}/{labels.get('name')}"
        revision = _revision(key, labels, unreadable)
        if revision is not None:
            out.setdefault(key, []).append(Revision(revision, str(labels.get("status")), labels))
    for revs in out.values():
        revs.sort(key=lambda r: r.revision)
    return out
