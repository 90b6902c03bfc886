"""plan(desired, observed) -> Plan: what apply would do to each release, and why. Pure.

Actions: install (not in the cluster), upgrade (chart, values or manifests differ), noop,
uninstall (`installed: false`), prune (labelled with this environment but gone from the spec),
blocked (stuck in pending-* or failed: needs `apply --recover` or a human).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from deployer.graph import batches
from deployer.manifests import ResourceChange, diff_manifests
from deployer.merge import Origin, ValuePath, leaves
from deployer.observed import PENDING, ObservedRelease
from deployer.project import DesiredRelease
from deployer.redact import NO_REDACTION, Redactor, for_release
from deployer.secrets import MASK, is_sensitive

INSTALL, UPGRADE, NOOP, UNINSTALL, PRUNE, BLOCKED = (
    "install",
    "upgrade",
    "noop",
    "uninstall",
    "prune",
    "blocked",
)
CHANGING = (INSTALL, UPGRADE, UNINSTALL, PRUNE)


@dataclass(frozen=True)
class DesiredState:
    """One release as this run would deploy it."""

    release: DesiredRelease
    values: Mapping[str, Any]
    origins: Mapping[ValuePath, Origin]
    manifest: str
    chart_version: str


@dataclass(frozen=True)
class ValueChange:
    path: str
    change: str  # added | removed | changed
    before: Any
    after: Any
    source: str  # where the new value comes from ("" when removed)


@dataclass(frozen=True)
class ReleasePlan:
    key: str
    name: str
    namespace: str
    action: str
    reasons: tuple[str, ...]
    chart: str
    version_before: str | None
    version_after: str | None
    revision: int | None  # the observed current revision
    needs: tuple[str, ...] = ()
    resources: tuple[ResourceChange, ...] = ()
    values: tuple[ValueChange, ...] = ()
    drift: tuple[ResourceChange, ...] = ()  # live objects that differ from the deployed revision
    # Masks this release's secret texts in the diffs above, drift found later too (deployer/redact.py).
    redactor: Redactor = field(default=NO_REDACTION, repr=False, compare=False)


@dataclass(frozen=True)
class Plan:
    environment: str
    releases: tuple[ReleasePlan, ...]
    order: tuple[tuple[str, ...], ...]  # batches of changing releases, in apply order
    notes: tuple[str, ...] = field(default=())

    @property
    def has_changes(self) -> bool:
        return any(r.action in CHANGING or r.action == BLOCKED for r in self.releases)

    def counts(self) -> dict[str, int]:
        out = {a: 0 for a in (INSTALL, UPGRADE, UNINSTALL, PRUNE, BLOCKED, NOOP)}
        for r in self.releases:
            out[r.action] += 1
        return out


def canonical(values: Mapping[str, Any]) -> Any:
    """Values as helm stores them (JSON): dates and other YAML-only types become strings."""
    return json.loads(json.dumps(values, default=str, sort_keys=True))


def value_changes(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    origins: Mapping[ValuePath, Origin],
    sensitive: Sequence[str],
) -> list[ValueChange]:
    old = dict(leaves(canonical(before)))
    new = dict(leaves(canonical(after)))
    out = []
    for path in sorted(set(old) | set(new)):
        if path in old and path in new and old[path] == new[path]:
            continue
        change = "added" if path not in old else "removed" if path not in new else "changed"
        hide = is_sensitive(path, sensitive)
        out.append(
            ValueChange(
                path=".".join(path),
                change=change,
                before=(MASK if hide else old[path]) if path in old else None,
                after=(MASK if hide else new[path]) if path in new else None,
                source=str(origins.get(path, "")) if path in new else "",
            )
        )
    return out


def plan_release(
    desired: DesiredState, observed: ObservedRelease | None, *, show_secrets: bool = False
) -> ReleasePlan:
    """The plan of one release, with its secret texts masked wherever they appear (unless show_secrets)."""
    sides = [(s.values, s.manifest) for s in (desired, observed) if s is not None]
    redactor = NO_REDACTION if show_secrets else for_release(desired.release.sensitive, sides)
    return _scrub(_plan_release(desired, observed, show_secrets=show_secrets), redactor)


def _scrub(plan: ReleasePlan, redactor: Redactor) -> ReleasePlan:
    return replace(
        plan,
        resources=redactor.changes(plan.resources),
        drift=redactor.changes(plan.drift),
        values=tuple(
            replace(v, before=redactor.value(v.before), after=redactor.value(v.after)) for v in plan.values
        ),
        redactor=redactor,
    )


def _plan_release(
    desired: DesiredState, observed: ObservedRelease | None, *, show_secrets: bool = False
) -> ReleasePlan:
    rel = desired.release
    sensitive = () if show_secrets else rel.sensitive
    base = ReleasePlan(
        key=rel.key,
        name=rel.name,
        namespace=rel.namespace,
        action=NOOP,
        reasons=(),
        chart=rel.chart.name,
        version_before=None,
        version_after=None,
        revision=None,
        needs=rel.needs,
    )
    if not rel.installed:
        if observed is None:
            return replace(
                base,
                action=NOOP,
                reasons=("not installed, and installed: false",),
                version_before=None,
                version_after=None,
                revision=None,
            )
        return replace(
            base,
            action=UNINSTALL,
            reasons=("installed: false",),
            version_before=observed.chart_version,
            version_after=None,
            revision=observed.revision,
            resources=tuple(diff_manifests(observed.manifest, "", observed.namespace)),
        )
    if observed is None:
        return replace(
            base,
            action=INSTALL,
            reasons=("not in the cluster",),
            version_before=None,
            version_after=desired.chart_version,
            revision=None,
            resources=tuple(diff_manifests("", desired.manifest, rel.namespace)),
            values=tuple(value_changes({}, desired.values, desired.origins, sensitive)),
        )
    if observed.status in PENDING or observed.status == "failed":
        hint = "run `deployer apply --recover`" if observed.status in PENDING else "fix it, then apply"
        return replace(
            base,
            action=BLOCKED,
            reasons=(f"revision {observed.revision} is {observed.status}; {hint}",),
            version_before=observed.chart_version,
            version_after=desired.chart_version,
            revision=observed.revision,
        )
    reasons = []
    if observed.chart != rel.chart.name or observed.chart_version != desired.chart_version:
        reasons.append(
            f"chart {observed.chart} {observed.chart_version} -> {rel.chart.name} {desired.chart_version}"
        )
    values = value_changes(observed.values, desired.values, desired.origins, sensitive)
    if values:
        reasons.append(f"{len(values)} value(s) changed")
    resources = diff_manifests(observed.manifest, desired.manifest, rel.namespace)
    if resources:
        reasons.append(f"{len(resources)} resource(s) changed")
    return replace(
        base,
        action=UPGRADE if reasons else NOOP,
        reasons=tuple(reasons) or ("up to date",),
        version_before=observed.chart_version,
        version_after=desired.chart_version,
        revision=observed.revision,
        resources=tuple(resources),
        values=tuple(values),
    )


def plan_prune(observed: ObservedRelease) -> ReleasePlan:
    return ReleasePlan(
        key=observed.key,
        name=observed.name,
        namespace=observed.namespace,
        action=PRUNE,
        reasons=(f"labelled for this environment but no longer in the spec (revision {observed.revision})",),
        chart=observed.chart,
        version_before=observed.chart_version,
        version_after=None,
        revision=observed.revision,
        resources=tuple(diff_manifests(observed.manifest, "", observed.namespace)),
    )


def make_plan(
    environment: str,
    desired: Sequence[DesiredState],
    observed: Mapping[str, ObservedRelease],
    *,
    prune_candidates: bool = True,
    spec_keys: Sequence[str] = (),
    show_secrets: bool = False,
    notes: Sequence[str] = (),
    everything: bool = False,
    project: str = "default",
) -> Plan:
    plans = [plan_release(d, observed.get(d.release.key), show_secrets=show_secrets) for d in desired]
    if everything:  # sync: upgrade every installed release, changed or not
        plans = [
            replace(p, action=UPGRADE, reasons=("sync",)) if p.action == NOOP and p.revision else p
            for p in plans
        ]
    if prune_candidates:
        known = set(spec_keys) | {d.release.key for d in desired}
        plans += [
            _scrub(plan_prune(o), NO_REDACTION if show_secrets else for_release((), [(o.values, o.manifest)]))
            for k, o in sorted(observed.items())
            if o.belongs_to(project, environment) and k not in known
        ]
    ordered = tuple(sorted(plans, key=lambda p: p.key))
    return Plan(environment=environment, releases=ordered, order=apply_order(ordered), notes=tuple(notes))


def apply_order(releases: Sequence[ReleasePlan]) -> tuple[tuple[str, ...], ...]:
    """Batches of changing releases in apply order: installs and upgrades after what they need,
    then removals, dependents first (the reverse of `needs`)."""
    needs = {r.key: r.needs for r in releases}
    changing = [r.key for r in releases if r.action in (INSTALL, UPGRADE)]
    removing = [r.key for r in releases if r.action in (UNINSTALL, PRUNE)]
    order = [tuple(b) for b in batches(changing, needs)]
    order += [tuple(b) for b in reversed(batches(removing, needs))]
    return tuple(order)


def with_drift(plan: Plan, drift: Mapping[str, Sequence[ResourceChange]]) -> Plan:
    """The plan with live drift attached; a release that only drifted becomes an upgrade (helm's
    upgrade puts the drifted fields back)."""
    out = []
    for rel in plan.releases:
        found = rel.redactor.changes(drift.get(rel.key, ()))
        if not found:
            out.append(rel)
            continue
        reason = f"{len(found)} resource(s) drifted from the deployed revision"
        reasons = (*rel.reasons, reason) if rel.action == UPGRADE else (reason,)
        action = UPGRADE if rel.action == NOOP else rel.action
        out.append(replace(rel, action=action, reasons=reasons, drift=found))
    releases = tuple(out)
    return replace(plan, releases=releases, order=apply_order(releases))
