"""plan(desired, observed) -> Plan: what apply would do to each release, and why. Pure.

Like is compared with like: the desired manifest (hooks taken out of `helm template` output) with
the stored manifest, the desired hooks (tests included) with the stored hooks, the chart's name and
version from Chart.yaml with the stored chart metadata. CRDs in `crds/` are never part of either
(helm installs them once and never upgrades them): under `crds: create` a changed CRD file is a
note, not a change; under `crds: createReplace` the planner compares them with the live CRDs
(deployer/crds.py).

Actions: install (not in the cluster, or replacing a release whose only revision failed), upgrade
(chart, values, manifest or hooks differ, or the latest revision failed), noop, uninstall
(`installed: false`), prune (labelled with this project and environment but gone from the spec),
blocked (pending-* needs `apply --recover`; uninstalling needs a human).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from deployer.crds import CrdChange
from deployer.graph import batches
from deployer.ignore import IgnoredChange
from deployer.manifests import FLUX_LABELS, Ignored, ResourceChange, diff_hooks, diff_manifests
from deployer.merge import Origin, ValuePath, leaves
from deployer.observed import PENDING, ObservedRelease, Status
from deployer.project import DesiredRelease
from deployer.redact import NO_REDACTION, Redactor, for_release
from deployer.releaseflags import plan_notes
from deployer.secrets import MASK, is_sensitive

if TYPE_CHECKING:
    from deployer.hooks import Hook


class Action(StrEnum):
    INSTALL = "install"
    UPGRADE = "upgrade"
    NOOP = "noop"
    UNINSTALL = "uninstall"
    PRUNE = "prune"
    BLOCKED = "blocked"


INSTALL, UPGRADE, NOOP, UNINSTALL, PRUNE, BLOCKED = Action
CHANGING = (INSTALL, UPGRADE, UNINSTALL, PRUNE)
REMOVING = (UNINSTALL, PRUNE)


@dataclass(frozen=True)
class DesiredState:
    """One release as this run would deploy it: what helm would store."""

    release: DesiredRelease
    values: Mapping[str, Any]
    origins: Mapping[ValuePath, Origin]
    manifest: str  # without hooks
    chart_version: str
    hooks: str = ""  # hook manifests, tests included
    chart_name: str = ""  # Chart.yaml's name ("" for a release that is not rendered)
    crds: Mapping[str, str] = field(default_factory=dict)  # crds/ files -> sha256
    uses_lookup: bool = False
    crd_text: Mapping[str, str] = field(default_factory=dict)  # crds/ files' YAML, for createReplace
    uses_api_versions: bool = False  # a template reads .Capabilities.APIVersions


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
    action: Action
    reasons: tuple[str, ...]
    chart: str
    version_before: str | None
    version_after: str | None
    revision: int | None  # the observed current revision
    needs: tuple[str, ...] = ()
    resources: tuple[ResourceChange, ...] = ()
    values: tuple[ValueChange, ...] = ()
    drift: tuple[ResourceChange, ...] = ()  # live objects that differ from the deployed revision
    hooks: tuple[ResourceChange, ...] = ()  # hook resources (tests included) that differ
    notes: tuple[str, ...] = ()  # facts that change nothing by themselves (CRD files, ...)
    replace: bool = False  # install after uninstalling a release whose only revision failed
    flux_owner: str | None = None  # the HelmRelease (namespace/name) that manages the deployed release
    ignored: tuple[IgnoredChange, ...] = ()  # differences `ignore:` rules left out (never shown above)
    crds: tuple[CrdChange, ...] = ()  # crds: createReplace: the CRDs apply creates or changes first
    commands: tuple[Hook, ...] = ()  # its `hooks:` (deployer/hooks.py: `due` says which apply runs)
    # Masks this release's secret texts in the diffs above, drift found later too (deployer/redact.py).
    redactor: Redactor = field(default=NO_REDACTION, repr=False, compare=False)


@dataclass(frozen=True)
class Plan:
    environment: str
    releases: tuple[ReleasePlan, ...]
    order: tuple[tuple[str, ...], ...]  # batches of changing releases, in apply order
    notes: tuple[str, ...] = field(default=())
    commands: tuple[Hook, ...] = ()  # the run's preapply and cleanup hooks (deployer/hooks.py)

    @property
    def has_changes(self) -> bool:
        return any(r.action in CHANGING or r.action == BLOCKED for r in self.releases)

    def counts(self) -> dict[str, int]:
        out = {str(a): 0 for a in (INSTALL, UPGRADE, UNINSTALL, PRUNE, BLOCKED, NOOP)}
        for r in self.releases:
            out[r.action] += 1
        return out

    @property
    def ignored(self) -> int:
        return sum(len(r.ignored) for r in self.releases)

    def release(self, key: str) -> ReleasePlan | None:
        return next((r for r in self.releases if r.key == key), None)


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
    sides = [(s.values, s.manifest + s.hooks) for s in (desired, observed) if s is not None]
    redactor = NO_REDACTION if show_secrets else for_release(desired.release.sensitive, sides)
    planned = _scrub(_plan_release(desired, observed, show_secrets=show_secrets), redactor)
    if planned.action in (INSTALL, UPGRADE):  # how helm will apply it, said where it will
        flag_notes = plan_notes(desired.release.flags)
        if flag_notes:
            planned = replace(planned, notes=(*planned.notes, *flag_notes))
    return planned


def _scrub(plan: ReleasePlan, redactor: Redactor) -> ReleasePlan:
    return replace(
        plan,
        resources=redactor.changes(plan.resources),
        drift=redactor.changes(plan.drift),
        hooks=redactor.changes(plan.hooks),
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
        chart=desired.chart_name or rel.chart.name,
        version_before=None if observed is None else observed.chart_version,
        version_after=desired.chart_version or None,
        revision=None if observed is None else observed.revision,
        needs=rel.needs,
    )
    if not rel.installed:
        if observed is None or observed.status == Status.UNINSTALLED:
            return replace(base, reasons=("not installed, and installed: false",), version_after=None)
        return replace(
            base,
            action=UNINSTALL,
            reasons=("installed: false",),
            chart=observed.chart,
            version_after=None,
            resources=tuple(diff_manifests(observed.manifest, "", observed.namespace)),
        )
    if observed is None or observed.status == Status.UNINSTALLED:
        return _install(base, desired, sensitive, ("not in the cluster",))
    if observed.status in PENDING:
        why = f"revision {observed.revision} is {observed.status}; run `deployer apply --recover`"
        return replace(base, action=BLOCKED, reasons=(why,))
    if observed.status == Status.UNINSTALLING:
        why = (
            f"revision {observed.revision} is uninstalling (helm is removing it, or a removal died); "
            f"finish it with `helm uninstall {rel.name} -n {rel.namespace}`, then apply"
        )
        return replace(base, action=BLOCKED, reasons=(why,))
    if observed.status == Status.FAILED and observed.last_deployed_revision is None:
        why = f"revision {observed.revision} failed and never deployed: uninstall it, then install anew"
        return _install(replace(base, replace=True), desired, sensitive, (why,))
    reasons = []
    if observed.status == Status.FAILED:
        reasons.append(
            f"revision {observed.revision} failed; helm upgrades from revision "
            f"{observed.last_deployed_revision}, the last deployed"
        )
    if observed.chart != base.chart or observed.chart_version != desired.chart_version:
        reasons.append(
            f"chart {observed.chart} {observed.chart_version} -> {base.chart} {desired.chart_version}"
        )
    values = value_changes(observed.values, desired.values, desired.origins, sensitive)
    if values:
        reasons.append(f"{len(values)} value(s) changed")
    # Flux-owned: helm-controller's origin labels are on every object it deployed (docs/diff.md).
    ignore = FLUX_LABELS if observed.flux_owner else ()
    hidden: Ignored = []
    hidden_hooks: Ignored = []
    options: dict[str, Any] = {"ignore_labels": ignore, "rules": rel.ignore}
    resources = diff_manifests(observed.manifest, desired.manifest, rel.namespace, **options, ignored=hidden)
    if resources:
        reasons.append(f"{len(resources)} resource(s) changed")
    hooks = diff_hooks(observed.hooks, desired.hooks, rel.namespace, **options, ignored=hidden_hooks)
    if hooks:
        reasons.append(f"{len(hooks)} hook(s) changed")
    return replace(
        base,
        action=UPGRADE if reasons else NOOP,
        reasons=tuple(reasons) or ("up to date",),
        resources=tuple(resources),
        values=tuple(values),
        hooks=tuple(hooks),
        notes=(crd_notes(desired.crds, observed.crds) if rel.crds == "create" else ()) + flux_note(observed),
        flux_owner=observed.flux_owner,
        ignored=tuple(IgnoredChange("resources", k, p) for k, p in hidden)
        + tuple(IgnoredChange("hooks", k, p) for k, p in hidden_hooks),
    )


def flux_note(observed: ObservedRelease) -> tuple[str, ...]:
    """Said of a release a Flux HelmRelease manages: Flux reverts whatever else deployer pushes."""
    if observed.flux_owner is None:
        return ()
    return (f"managed by Flux (HelmRelease {observed.flux_owner}): change it through Flux",)


def _install(
    base: ReleasePlan, desired: DesiredState, sensitive: Sequence[str], reasons: tuple[str, ...]
) -> ReleasePlan:
    rel = desired.release
    notes: tuple[str, ...] = ()
    if desired.crds and rel.crds == "create":
        notes = (
            f"installs {len(desired.crds)} CRD(s) from crds/ before anything else "
            "(helm never upgrades or deletes them afterwards)",
        )
    return replace(
        base,
        action=INSTALL,
        reasons=reasons,
        resources=tuple(diff_manifests("", desired.manifest, rel.namespace)),
        hooks=tuple(diff_manifests("", desired.hooks, rel.namespace)),
        values=tuple(value_changes({}, desired.values, desired.origins, sensitive)),
        notes=notes,
    )


def crd_notes(desired: Mapping[str, str], installed: Mapping[str, str]) -> tuple[str, ...]:
    """What differs between the chart's crds/ files and those of the installed chart: helm will not
    act on it, so it is said, not planned."""
    notes = []
    for path in sorted(desired):
        if path not in installed:
            notes.append(
                f"{path} is new: helm does not install CRDs on upgrade; set `crds: createReplace` on the "
                "release to have deployer apply it"
            )
        elif desired[path] != installed[path]:
            notes.append(
                f"{path} changed since the release was installed: helm never upgrades CRDs; set "
                "`crds: createReplace` on the release to have deployer apply it before the upgrade"
            )
    return tuple(notes)


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
    removing = [r.key for r in releases if r.action in REMOVING]
    order = [tuple(b) for b in batches(changing, needs)]
    order += [tuple(b) for b in reversed(batches(removing, needs))]
    return tuple(order)


def with_drift(
    plan: Plan,
    drift: Mapping[str, Sequence[ResourceChange]],
    ignored: Mapping[str, Ignored] | None = None,
) -> Plan:
    """The plan with live drift attached; a release that only drifted becomes an upgrade (helm's
    upgrade puts the drifted fields back). `ignored`: the drift `ignore:` rules left out, per
    release (counted, never an upgrade)."""
    out = []
    for planned in plan.releases:
        hidden = (ignored or {}).get(planned.key, ())
        if hidden:
            more = tuple(IgnoredChange("drift", k, p) for k, p in hidden)
            planned = replace(planned, ignored=(*planned.ignored, *more))  # noqa: PLW2901
        changes = planned.redactor.changes(drift.get(planned.key, ()))
        # An object the server refuses as deployed is a note (shown even when nothing changes): an
        # upgrade to the same manifest would not help.
        refused = tuple(c.diff.strip() for c in changes if c.change == "refused")
        rel = replace(planned, notes=(*planned.notes, *refused)) if refused else planned
        found = tuple(c for c in changes if c.change != "refused")
        if not found:
            out.append(rel)
            continue
        reason = f"{len(found)} resource(s) drifted from the deployed revision"
        reasons = (*rel.reasons, reason) if rel.action == UPGRADE else (reason,)
        action = UPGRADE if rel.action == NOOP else rel.action
        out.append(replace(rel, action=action, reasons=reasons, drift=found))
    releases = tuple(out)
    return replace(plan, releases=releases, order=apply_order(releases))


def with_crds(plan: Plan, changes: Mapping[str, Sequence[CrdChange]]) -> Plan:
    """The plan with each release's CRD changes (`crds: createReplace`) attached: a release whose
    only change is a CRD becomes an upgrade (apply applies its CRDs first); a refused CRD change
    blocks the release, so nothing of it is applied."""
    out = []
    for rel in plan.releases:
        found = tuple(changes.get(rel.key, ()))
        if not found or rel.action not in (INSTALL, UPGRADE, NOOP):
            out.append(rel)
            continue
        refused = [line for c in found if c.change == "refused" for line in c.summary]
        if refused:
            out.append(replace(rel, action=BLOCKED, reasons=tuple(refused), crds=found))
            continue
        reason = f"{len(found)} CRD(s) to apply (crds: createReplace)"
        reasons = (*rel.reasons, reason) if rel.action != NOOP else (reason,)
        out.append(
            replace(rel, action=UPGRADE if rel.action == NOOP else rel.action, reasons=reasons, crds=found)
        )
    releases = tuple(out)
    return replace(plan, releases=releases, order=apply_order(releases))
