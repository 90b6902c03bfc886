"""CRD policy `crds: createReplace`: the CRDs in a chart's crds/ are compared with the live ones
(plan) and applied server-side before the release's install or upgrade (apply), which helm itself
never does (it creates a missing CRD once and never changes it).

The comparison is a server-side apply dry run (field manager `deployer`, forced): what the apply
would make of the live CRD, so a CRD applied once compares equal afterwards. A change is summarised
(versions added or removed, served and storage flags, schema fields added or removed per version as
paths), never shown as the CRD's thousands of lines. A change that drops a version still listed in
the live CRD's `status.storedVersions` is refused, as the API server refuses it: objects stored at
that version would become unreadable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from deployer.errors import DeployerError

if TYPE_CHECKING:
    from deployer.charts import ChartStore
    from deployer.kube import Cluster
    from deployer.project import DesiredRelease

MANAGER = "deployer"
CRD_KIND = "CustomResourceDefinition"
CRD_API = "apiextensions.k8s.io/v1"


@dataclass(frozen=True)
class CrdChange:
    name: str
    change: str  # added | changed | refused
    summary: tuple[str, ...]  # one line per version or field change; for refused, the reason


class CrdRefused(DeployerError):
    """A CRD change the API server would refuse (or did)."""


def documents(texts: Mapping[str, str]) -> list[dict[str, Any]]:
    """The CRDs of a chart's crds/ files (path -> text), sorted by name."""
    found: dict[str, dict[str, Any]] = {}
    for _path, text in sorted(texts.items()):
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict) and doc.get("kind") == CRD_KIND:
                found[str((doc.get("metadata") or {}).get("name", ""))] = doc
    return [found[n] for n in sorted(found)]


def dropped_stored_versions(live: Mapping[str, Any], desired: Mapping[str, Any]) -> list[str]:
    """Versions the live CRD has stored objects at that the desired CRD no longer lists."""
    stored = (live.get("status") or {}).get("storedVersions") or []
    kept = {v.get("name") for v in (desired.get("spec") or {}).get("versions") or []}
    return [v for v in stored if v not in kept]


def refusal(name: str, dropped: Sequence[str]) -> str:
    return (
        f"CRD {name}: the chart drops version(s) {', '.join(dropped)}, still in the live CRD's "
        "status.storedVersions; the API server refuses to remove a stored version (objects stored at "
        "it would become unreadable): migrate them to another version and remove it from "
        "status.storedVersions first"
    )


def _versions(crd: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(v.get("name")): v for v in (crd.get("spec") or {}).get("versions") or []}


def _flags(version: Mapping[str, Any]) -> str:
    return ", ".join(f for f in ("served", "storage") if version.get(f)) or "not served"


def _fields(schema: Any, prefix: str = "") -> Iterator[str]:
    """Every property path of an OpenAPI v3 schema (`.spec.color`, `.spec.items[].name`)."""
    if not isinstance(schema, Mapping):
        return
    for name, sub in sorted((schema.get("properties") or {}).items()):
        path = f"{prefix}.{name}"
        yield path
        yield from _fields(sub, path)
    if isinstance(schema.get("items"), Mapping):
        yield from _fields(schema["items"], f"{prefix}[]")


def _schema(version: Mapping[str, Any]) -> Any:
    return (version.get("schema") or {}).get("openAPIV3Schema") or {}


def summarize(live: Mapping[str, Any], applied: Mapping[str, Any]) -> tuple[str, ...]:
    """What an apply changes in a CRD, in a few lines: versions, their flags, their fields."""
    before, after = _versions(live), _versions(applied)
    lines: list[str] = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old is None:
            assert new is not None
            lines.append(f"version {name} added ({_flags(new)})")
            continue
        if new is None:
            lines.append(f"version {name} removed")
            continue
        if _flags(old) != _flags(new):
            lines.append(f"version {name}: {_flags(old)} -> {_flags(new)}")
        old_fields, new_fields = set(_fields(_schema(old))), set(_fields(_schema(new)))
        if added := sorted(new_fields - old_fields):
            lines.append(f"version {name}: field(s) added: {', '.join(added)}")
        if removed := sorted(old_fields - new_fields):
            lines.append(f"version {name}: field(s) removed: {', '.join(removed)}")
        if not (added or removed) and _schema(old) != _schema(new):
            lines.append(f"version {name}: schema changed (types, validations or descriptions)")
        rest = sorted(k for k in set(old) | set(new) if k not in ("name", "served", "storage", "schema"))
        if changed := [k for k in rest if old.get(k) != new.get(k)]:
            lines.append(f"version {name}: {', '.join(changed)} changed")
    spec_keys = set(live.get("spec") or {}) | set(applied.get("spec") or {})
    other = sorted(
        k
        for k in spec_keys
        if k != "versions" and (live.get("spec") or {}).get(k) != (applied.get("spec") or {}).get(k)
    )
    if other:
        lines.append(f"spec: {', '.join(other)} changed")
    if not lines:
        lines.append("metadata changed (labels or annotations)")
    return tuple(lines)


def plan_crds(cluster: Cluster, texts: Mapping[str, str]) -> list[CrdChange]:
    """Each CRD of crds/ that an apply would create or change, with its summary; a change the API
    server refuses (a dropped stored version, or its own validation) as `refused`."""
    from deployer.drift import comparable
    from deployer.kube import Refused

    out: list[CrdChange] = []
    for doc in documents(texts):
        name = str(doc["metadata"]["name"])
        live = cluster.live_object(doc, "")
        if live is None:
            versions = ", ".join(f"{n} ({_flags(v)})" for n, v in sorted(_versions(doc).items()))
            out.append(CrdChange(name, "added", (f"new CRD, version(s) {versions}",)))
            continue
        if dropped := dropped_stored_versions(live, doc):
            out.append(CrdChange(name, "refused", (refusal(name, dropped),)))
            continue
        applied = cluster.server_side_apply(doc, "", manager=MANAGER, dry_run=True)
        if isinstance(applied, Refused):
            out.append(
                CrdChange(name, "refused", (f"CRD {name}: the API server refuses it: {applied.message}",))
            )
            continue
        if comparable(live) != comparable(applied):
            out.append(CrdChange(name, "changed", summarize(live, applied)))
    return out


def apply_crds(cluster: Cluster, texts: Mapping[str, str]) -> list[str]:
    """Apply every CRD of crds/ server-side (manager `deployer`, forced); the names applied.
    Checks every CRD first, so a refused one applies none of them."""
    from deployer.kube import Refused

    docs = documents(texts)
    for doc in docs:
        live = cluster.live_object(doc, "")
        if live is not None and (dropped := dropped_stored_versions(live, doc)):
            raise CrdRefused(refusal(str(doc["metadata"]["name"]), dropped))
    for doc in docs:
        result = cluster.server_side_apply(doc, "", manager=MANAGER, dry_run=False)
        if isinstance(result, Refused):
            raise CrdRefused(f"CRD {doc['metadata']['name']}: the API server refused it: {result.message}")
    return [str(d["metadata"]["name"]) for d in docs]


def _established(crd: Any) -> bool:
    conditions = ((crd or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def applier(
    cluster: Cluster, charts: ChartStore, log: Callable[[str], None], *, wait_seconds: float = 60.0
) -> Callable[[DesiredRelease, Path], None]:
    """The apply step for Executor.apply_crds: a release's crds/ CRDs applied, then waited for
    until the API server serves them (Established), so the release's objects meet the new schema."""

    def apply(release: DesiredRelease, chart: Path) -> None:
        texts = charts.contents(chart).crd_text
        names = apply_crds(cluster, texts)
        deadline = time.monotonic() + wait_seconds
        for doc in documents(texts):
            while not _established(cluster.live_object(doc, "")):
                if time.monotonic() > deadline:
                    raise CrdRefused(
                        f"CRD {doc['metadata']['name']} was applied but is not Established after "
                        f"{wait_seconds:.0f}s"
                    )
                time.sleep(0.2)
        if names:
            log(
                f"{release.key}: applied {len(names)} CRD(s) server-side (crds: createReplace): "
                + ", ".join(names)
            )

    return apply
