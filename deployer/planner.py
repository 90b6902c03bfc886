"""Plan one environment: against the cluster (diff, apply, sync), or against the spec as of another
Git revision (diff --base). Orchestration of the pure stages; typed options in, a Plan out.

The cluster is read once (helm's release Secrets) before rendering, because how a release renders
depends on it: `--is-upgrade` when helm will upgrade it, and `--dry-run=server` for charts that call
`lookup` so the render sees the live objects the real upgrade will see.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from deployer.charts import ChartStore
from deployer.desired import resolve, select
from deployer.errors import HelmError
from deployer.helm import Helm
from deployer.hooks import attach
from deployer.kube import Cluster
from deployer.manifests import Ignored, ResourceChange, parse_manifest
from deployer.merge import Layer, merge_layers
from deployer.observed import ENV_LABEL, PROJECT_LABEL, ObservedRelease, Status, current_releases
from deployer.plan import (
    INSTALL,
    NOOP,
    PRUNE,
    UPGRADE,
    DesiredState,
    Plan,
    make_plan,
    plan_release,
    with_crds,
    with_drift,
)
from deployer.project import DesiredRelease, Project
from deployer.render import render_all
from deployer.setvalues import Assignment

Log = Callable[[str], None]


@dataclass(frozen=True)
class PlanOptions:
    environment: str
    selectors: Sequence[Mapping[str, str]] = ()
    extra_layers: Sequence[Layer | Assignment] = ()  # command-line --values, --set family: highest
    concurrency: int = 4
    kube_version: str | None = None  # override the cluster's (or, offline, the environment's)
    show_secrets: bool = False
    everything: bool = False  # sync: upgrade every installed release, changed or not
    no_ignore: bool = False  # --no-ignore: `ignore:` rules are not applied
    render_cache: Path | None = None


@dataclass
class EnvironmentPlan:
    plan: Plan
    states: list[DesiredState]
    observed: dict[str, ObservedRelease] = field(default_factory=dict)
    observed_requests: int = 0


def desired_releases(project: Project, options: PlanOptions) -> tuple[list[DesiredRelease], list[str]]:
    """The selected releases of the environment, and every release key in the spec."""
    everything = resolve(project, options.environment, options.extra_layers)
    chosen = select(everything, options.selectors)
    if options.no_ignore:  # --no-ignore: every difference shown
        chosen = [replace(r, ignore=()) for r in chosen]
    return chosen, [r.key for r in everything]


def upgraded_by_helm(observed: ObservedRelease | None) -> bool:
    """Whether `helm upgrade --install` will upgrade (not install) this release: the plan replaces
    a release whose only revision failed, and helm installs over an uninstalled one."""
    if observed is None or observed.status == Status.UNINSTALLED:
        return False
    return not (observed.status == Status.FAILED and observed.last_deployed_revision is None)


def rendered_as_install(observed: ObservedRelease) -> bool:
    """Whether helm rendered the stored revision as an install: the first revision, or a rollback
    (which stores an older revision's manifest as it was)."""
    return observed.revision == 1 or observed.description.startswith("Rollback to ")


def render_states(  # noqa: PLR0917
    project: Project,
    releases: Sequence[DesiredRelease],
    helm: Helm,
    charts: ChartStore,
    options: PlanOptions,
    log: Log,
    *,
    kube_version: str | None,
    api_versions: Sequence[str] = (),
    upgrades: Sequence[str] = (),
    cluster_flags: Sequence[str] | None = None,
    stored: Mapping[str, str] | None = None,
) -> list[DesiredState]:
    merged = {r.key: merge_layers(list(r.layers)) for r in releases}
    installed = [r for r in releases if r.installed]
    rendered = asyncio.run(
        render_all(
            helm,
            charts,
            installed,
            {k: m.values for k, m in merged.items()},
            concurrency=options.concurrency,
            kube_version=kube_version,
            api_versions=api_versions,
            log=log,
            render_cache=options.render_cache,
            upgrades=set(upgrades),
            cluster_flags=cluster_flags,
            stored=stored,
        )
    )
    by_key = {r.release.key: r for r in rendered}
    states = []
    for rel in releases:
        item = by_key.get(rel.key)
        manifest, hooks = (item.manifest, item.hooks) if item else ("", "")
        states.append(
            DesiredState(
                release=rel,
                values=merged[rel.key].values,
                origins=merged[rel.key].origins,
                manifest=manifest,
                hooks=hooks,
                chart_version=item.chart_version if item else "",
                chart_name=item.chart_name if item else "",
                crds=item.contents.crds if item else {},
                crd_text=item.contents.crd_text if item and rel.crds == "createReplace" else {},
                uses_lookup=item.contents.uses_lookup if item else False,
                uses_api_versions=item.contents.uses_api_versions if item else False,
            )
        )
    cached = sum(1 for r in rendered if r.cached)
    live = sum(1 for r in rendered if r.looked_up)
    extra = f", {live} against the cluster for lookup" if live else ""
    log(
        f"rendered {len(rendered)} release(s) ({cached} from the render cache{extra}) "
        f"with helm {helm.version_text}"
    )
    return states


def plan_against_cluster(  # noqa: PLR0917
    project: Project,
    options: PlanOptions,
    helm: Helm,
    charts: ChartStore,
    cluster: Cluster,
    log: Log,
) -> EnvironmentPlan:
    releases, spec_keys = desired_releases(project, options)
    target = cluster.target
    kube_version = options.kube_version or cluster.version()
    api_versions = cluster.api_versions()
    before = cluster.requests
    secrets, how = cluster.helm_release_secrets([r.namespace for r in releases])
    unreadable: list[str] = []
    observed = current_releases(secrets, unreadable)
    reads = cluster.requests - before
    how_text = (
        "one cluster-wide list" if how == "cluster" else "per-namespace lists: cluster-wide list forbidden"
    )
    log(
        f"observed {len(observed)} helm release(s) in {reads} API request(s) ({how_text}) "
        f"on {target.context}, Kubernetes {kube_version}"
    )
    upgrades = [r.key for r in releases if upgraded_by_helm(observed.get(r.key))]

    def render(chosen: Sequence[DesiredRelease], upgrades: Sequence[str]) -> list[DesiredState]:
        return render_states(
            project,
            chosen,
            helm,
            charts,
            options,
            log,
            kube_version=kube_version,
            api_versions=api_versions,
            upgrades=upgrades,
            cluster_flags=target.helm_flags(),
            stored={k: f"{o.manifest}\n---\n{o.hooks}" for k, o in observed.items()},
        )

    states = render(releases, upgrades)
    # A revision helm rendered as an install (`.Release.IsInstall`) differs from an upgrade render
    # of the same inputs in any chart that prints IsInstall/IsUpgrade. If an install render of the
    # unchanged spec still matches it, the user changed nothing: no upgrade is due.
    suspects = [
        s.release
        for s in states
        if s.release.key in upgrades
        and rendered_as_install(observed[s.release.key])
        and plan_release(s, observed[s.release.key]).action == UPGRADE
    ]
    if suspects:
        as_install = {s.release.key: s for s in render(suspects, ())}
        states = [
            as_install[s.release.key]
            if s.release.key in as_install
            and plan_release(as_install[s.release.key], observed[s.release.key]).action == NOOP
            else s
            for s in states
        ]
    notes = [
        f"helm release record {what} cannot be read (not written by helm): left out of the plan"
        for what in unreadable
    ]
    if how == "namespaces":
        notes.append(
            "cluster-wide Secret list forbidden: releases outside the spec's namespaces were not checked"
        )
    plan = make_plan(
        options.environment,
        states,
        observed,
        prune_candidates=not options.selectors,
        spec_keys=spec_keys,
        show_secrets=options.show_secrets,
        notes=notes,
        everything=options.everything,
        project=project.name,
    )
    replacing = {s.release.key: s.crd_text for s in states if s.crd_text and s.release.installed}
    if replacing:
        from deployer.crds import plan_crds

        plan = with_crds(plan, {k: plan_crds(cluster, texts) for k, texts in sorted(replacing.items())})
        log(
            f"compared the crds/ CRDs of {len(replacing)} release(s) (crds: createReplace) with the live ones"
        )
    if not project.spec.project and any(r.action == PRUNE for r in plan.releases):
        note = (
            f"releases to prune are those labelled deployer-project={project.name}, a name taken from "
            "the spec's directory: a spec in another directory of that name deploys as the same "
            "project; set `project:` in deployer.yaml to keep them apart"
        )
        plan = replace(plan, notes=(*plan.notes, note))
    return EnvironmentPlan(attach(plan, project), states, observed, reads)


def plan_against_base(  # noqa: PLR0917
    project: Project,
    base: Project | None,
    base_ref: str,
    options: PlanOptions,
    helm: Helm,
    charts: ChartStore,
    base_charts: ChartStore,
    log: Log,
) -> Plan:
    """The spec now against the spec at `base_ref` (`base`: None when the environment did not exist
    there), rendered offline: no cluster is read. Both sides render with the capabilities of the
    spec now (deployer/capabilities.py): one cluster, so only the spec's change shows."""
    from deployer.capabilities import explain_kube_version, for_environment, missing_note

    caps = for_environment(project, options.environment, options.kube_version)
    releases = desired_releases(project, options)[0]

    def render(proj: Project, chosen: Sequence[DesiredRelease], store: ChartStore) -> list[DesiredState]:
        try:
            return render_states(
                proj,
                chosen,
                helm,
                store,
                options,
                log,
                kube_version=caps.kube_version,
                api_versions=caps.api_versions,
            )
        except HelmError as exc:
            raise explain_kube_version(exc, options.environment, caps) from None

    head = render(project, releases, charts)
    old: list[DesiredState] = []
    if base is not None:
        old = render(base, desired_releases(base, options)[0], base_charts)
    observed = {
        s.release.key: ObservedRelease(
            name=s.release.name,
            namespace=s.release.namespace,
            revision=0,
            status=Status.DEPLOYED,
            chart=s.chart_name,
            chart_version=s.chart_version,
            values=s.values,
            manifest=s.manifest,
            hooks=s.hooks,
            crds=s.crds,
            labels={ENV_LABEL: options.environment, PROJECT_LABEL: project.name},
            description=f"as of {base_ref}",
            deployed_at="",
            last_deployed_revision=0,
        )
        for s in old
        if s.release.installed
    }
    notes = [f"compared with {base_ref} (no cluster access)"]
    lookups = sorted(s.release.key for s in head if s.uses_lookup and s.release.installed)
    if lookups:
        notes.append(
            f"{', '.join(lookups)} use(s) lookup: values looked up in the cluster are unknown offline, "
            "so their diff may show changes a cluster diff would not"
        )
    guarded = sorted(s.release.key for s in head if s.uses_api_versions and s.release.installed)
    if guarded and not caps.known:
        notes.append(missing_note(options.environment, guarded))
    plan = make_plan(
        options.environment,
        head,
        observed,
        prune_candidates=not options.selectors,
        spec_keys=(),
        show_secrets=options.show_secrets,
        notes=notes,
        project=project.name,
    )
    plan = attach(plan, project)
    return _offline_crd_notes(plan, head, observed, base_ref)


def _offline_crd_notes(
    plan: Plan, head: Sequence[DesiredState], observed: Mapping[str, ObservedRelease], base_ref: str
) -> Plan:
    """Offline, a `crds: createReplace` release has no live CRDs to compare with: its crds/ files
    that changed since the base are a note (the plan against the cluster summarises them)."""
    notes = {}
    for s in head:
        old = observed.get(s.release.key)
        if s.release.crds != "createReplace" or old is None:
            continue
        changed = sorted(p for p in s.crds if old.crds.get(p) != s.crds[p])
        if changed:
            notes[s.release.key] = (
                f"{', '.join(changed)} changed since {base_ref}: apply applies the chart's CRDs "
                "server-side before the upgrade (crds: createReplace); `deployer diff` against the "
                "cluster summarises the change",
            )
    if not notes:
        return plan
    releases = tuple(replace(r, notes=(*r.notes, *notes.get(r.key, ()))) for r in plan.releases)
    return replace(plan, releases=releases)


def live_plan(planned: EnvironmentPlan, cluster: Cluster, log: Log, helm_major: int) -> Plan:
    """The plan with the drift of live objects from each deployed revision attached, and a note on
    every object an install or upgrade would create that exists under another owner
    (deployer/ownership.py) and on every change it makes that the server refuses
    (deployer/preflight.py)."""
    from deployer.drift import live_drift
    from deployer.ownership import conflicts
    from deployer.preflight import refused_changes

    drift: dict[str, list[ResourceChange]] = {}
    ignored: dict[str, Ignored] = {}
    states = {s.release.key: s for s in planned.states}
    for rel in planned.plan.releases:
        observed = planned.observed.get(rel.key)
        if observed is not None and rel.action in (NOOP, UPGRADE):
            state = states.get(rel.key)
            rules = state.release.ignore if state is not None else ()
            ignored[rel.key] = []
            drift[rel.key] = live_drift(
                cluster, observed.manifest, observed.namespace, observed.revision, rules, ignored[rel.key]
            )
    log(f"compared live objects of {len(drift)} release(s) through server-side apply dry runs")
    drifted = with_drift(planned.plan, drift, ignored)
    out, checked, tried = [], 0, 0
    for rel in drifted.releases:
        state = states.get(rel.key)
        touches = any(c.change in ("added", "changed") for c in rel.resources)
        if rel.action not in (INSTALL, UPGRADE) or state is None or not touches:
            out.append(rel)
            continue
        docs = parse_manifest(state.manifest, rel.namespace)  # once, for both checks
        added = {c.key: docs[c.key] for c in rel.resources if c.change == "added" and c.key in docs}
        verb = "install" if rel.action == INSTALL else "upgrade"
        found = conflicts(
            cluster,
            added,
            release=rel.name,
            namespace=rel.namespace,
            verb=verb,
            take_ownership=state.release.flags.take_ownership,
        )
        checked += len(added)
        if rel.action == UPGRADE:
            changed = {c.key: docs[c.key] for c in rel.resources if c.change == "changed" and c.key in docs}
            observed = planned.observed.get(rel.key)
            found += refused_changes(
                cluster,
                changed,
                namespace=rel.namespace,
                server_side=helm_major >= 4 and observed is not None and observed.apply_method == "ssa",
                redact=rel.redactor.redact,
            )
            tried += len(changed)
        out.append(replace(rel, notes=(*rel.notes, *found)) if found else rel)
    log(
        f"checked {checked} object(s) the plan creates for an existing owner and dry-ran {tried} "
        "changed object(s) on the server"
    )
    return replace(drifted, releases=tuple(out))
