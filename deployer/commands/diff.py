"""`deployer diff`: the plan for an environment against the cluster, or (--base) against the spec as
of a Git ref, with no cluster at all."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from deployer.cache import cache_dir
from deployer.commands.common import cli_layers, helm_and_charts, progress, project, selectors
from deployer.commands.session import guard_context
from deployer.desired import resolve, select
from deployer.errors import UsageError
from deployer.merge import merge_layers
from deployer.observed import ENV_LABEL, PROJECT_LABEL, ObservedRelease
from deployer.plan import NOOP, UPGRADE, DesiredState, Plan, make_plan, with_drift
from deployer.project import DesiredRelease, Project
from deployer.render import render_all


def desired_releases(args: argparse.Namespace, proj: Project) -> tuple[list[DesiredRelease], list[str]]:
    """The selected releases of the environment, and every release key in the spec."""
    everything = resolve(proj, args.environment, cli_layers(args))
    return select(everything, selectors(args.selector)), [r.key for r in everything]


def render_states(
    args: argparse.Namespace,
    proj: Project,
    releases: Sequence[DesiredRelease],
    *,
    kube_version: str | None,
    api_versions: Sequence[str],
    log: Callable[[str], None],
) -> list[DesiredState]:
    helm, charts = helm_and_charts(args, proj, log)
    merged = {r.key: merge_layers(list(r.layers)) for r in releases}
    installed = [r for r in releases if r.installed]
    rendered = asyncio.run(
        render_all(
            helm,
            charts,
            installed,
            {k: m.values for k, m in merged.items()},
            concurrency=args.concurrency,
            kube_version=kube_version,
            api_versions=api_versions,
            log=log,
            render_cache=cache_dir(os.environ) / "renders",
        )
    )
    by_key = {r.release.key: r for r in rendered}
    states = []
    for rel in releases:
        item = by_key.get(rel.key)
        states.append(
            DesiredState(
                release=rel,
                values=merged[rel.key].values,
                origins=merged[rel.key].origins,
                manifest=item.manifest if item else "",
                chart_version=item.chart_version if item else "",
            )
        )
    cached = sum(1 for r in rendered if r.cached)
    log(f"rendered {len(rendered)} release(s) ({cached} from the render cache) with helm {helm.version_text}")
    return states


@dataclass
class ClusterPlan:
    plan: Plan
    states: list[DesiredState]
    target: Any  # deployer.kube.KubeTarget
    cluster: Any  # deployer.kube.Cluster
    observed: dict[str, ObservedRelease]
    observed_requests: int


def cluster_plan(
    args: argparse.Namespace,
    proj: Project,
    log: Callable[[str], None],
    *,
    everything: bool = False,
    cluster: Any = None,
) -> ClusterPlan:
    """The plan against the cluster; `everything` (sync) upgrades releases that did not change too."""
    from deployer.kube import Cluster, resolve_target
    from deployer.observed import current_releases

    releases, spec_keys = desired_releases(args, proj)
    if cluster is None:  # apply passes the cluster of its session, already resolved and guarded
        target = resolve_target(args.kubeconfig, args.kube_context, os.environ)
        guard_context(proj, args.environment, target.context)
        cluster = Cluster(target)
    target = cluster.target
    kube_version = args.kube_version or cluster.version()
    api_versions = cluster.api_versions()
    before = cluster.requests
    secrets, how = cluster.helm_release_secrets([r.namespace for r in releases])
    observed = current_releases(secrets)
    reads = cluster.requests - before
    how_text = (
        "one cluster-wide list" if how == "cluster" else "per-namespace lists: cluster-wide list forbidden"
    )
    log(
        f"observed {len(observed)} helm release(s) in {reads} API request(s) ({how_text}) "
        f"on {target.context}, Kubernetes {kube_version}"
    )
    states = render_states(
        args, proj, releases, kube_version=kube_version, api_versions=api_versions, log=log
    )
    notes = []
    if how == "namespaces":
        notes.append(
            "cluster-wide Secret list forbidden: releases outside the spec's namespaces were not checked"
        )
    plan = make_plan(
        args.environment,
        states,
        observed,
        prune_candidates=not args.selector,
        spec_keys=spec_keys,
        show_secrets=getattr(args, "show_secrets", False),
        notes=notes,
        everything=everything,
        project=proj.name,
    )
    return ClusterPlan(plan, states, target, cluster, observed, reads)


def base_plan(args: argparse.Namespace, proj: Project, log: Callable[[str], None]) -> Plan:
    from deployer.gitbase import toplevel, worktree_at

    kube_version = args.kube_version or proj.environment(args.environment).kube_version
    releases = desired_releases(args, proj)[0]
    head = render_states(args, proj, releases, kube_version=kube_version, api_versions=(), log=log)
    with worktree_at(proj.root, args.base) as base_root:
        from deployer.project import load_project

        base_spec = base_root / proj.path.relative_to(toplevel(proj.root))
        base_proj = load_project(base_spec)
        if args.environment in base_proj.spec.environments:
            base_releases = desired_releases(args, base_proj)[0]
            base = render_states(
                args, base_proj, base_releases, kube_version=kube_version, api_versions=(), log=log
            )
        else:
            base = []
    observed = {
        s.release.key: ObservedRelease(
            name=s.release.name,
            namespace=s.release.namespace,
            revision=0,
            status="deployed",
            chart=s.release.chart.name,
            chart_version=s.chart_version,
            values=s.values,
            manifest=s.manifest,
            labels={ENV_LABEL: args.environment, PROJECT_LABEL: proj.name},
            description=f"as of {args.base}",
            deployed_at="",
            last_deployed_revision=0,
        )
        for s in base
        if s.release.installed
    }
    return make_plan(
        args.environment,
        head,
        observed,
        prune_candidates=not args.selector,
        spec_keys=(),
        show_secrets=args.show_secrets,
        notes=[f"compared with {args.base} (no cluster access)"],
        project=proj.name,
    )


def live_plan(planned: ClusterPlan, log: Callable[[str], None]) -> Plan:
    from deployer.drift import live_drift

    drift = {}
    for rel in planned.plan.releases:
        observed = planned.observed.get(rel.key)
        if observed is not None and rel.action in (NOOP, UPGRADE):
            drift[rel.key] = live_drift(planned.cluster, observed.manifest, observed.namespace)
    log(f"compared live objects of {len(drift)} release(s) through server-side apply dry runs")
    return with_drift(planned.plan, drift)


def diff(args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    proj = project(args)
    log = progress()
    if args.base:
        if args.live:
            raise UsageError("--live compares with the cluster; it cannot be combined with --base")
        plan = base_plan(args, proj, log)
    else:
        planned = cluster_plan(args, proj, log)
        plan = planned.plan
        if args.live:
            plan = live_plan(planned, log)
    from deployer.commands.output import emit_plan

    emit_plan(plan, args.output)
    return 2 if args.detailed_exitcode and plan.has_changes else 0
