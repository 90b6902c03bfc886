"""`deployer diff`: the plan for an environment against the cluster, or (--base) against the spec as of
a Git ref, with no cluster at all."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deployer.commands.common import helm_and_charts, plan_options, progress, project
from deployer.errors import UsageError
from deployer.project import Project


def diff(args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    proj = project(args)
    log = progress()
    options = plan_options(args)
    if args.base and args.live:
        raise UsageError("--live compares with the cluster; it cannot be combined with --base")
    if args.base and args.save_plan:
        raise UsageError(
            "--save-plan records the cluster's revisions; it cannot be combined with --base",
            hint="save the plan against the cluster (no --base)",
        )
    if args.save_plan:
        from deployer.planfile import check_writable

        check_writable(Path(args.save_plan))  # before any work, not after the whole plan
    cluster = None
    if not args.base:  # the context is chosen (or refused) before anything else runs
        from deployer.commands.session import kube_target
        from deployer.kube import Cluster

        cluster = Cluster(kube_target(proj, args.environment, args))
    helm, charts = helm_and_charts(args, proj, log)
    if args.base:
        from deployer.capabilities import for_environment
        from deployer.gitbase import toplevel, worktree_at
        from deployer.planner import plan_against_base
        from deployer.project import load_project

        # an unknown environment or a malformed capabilities file fails before any git work
        for_environment(proj, args.environment)
        with worktree_at(proj.root, args.base) as base_root:
            base = load_project(base_root / proj.path.relative_to(toplevel(proj.root)), sops=proj.sops)
            known = args.environment in base.spec.environments
            _helm, base_charts = helm_and_charts(args, base, log)
            plan = plan_against_base(
                proj, base if known else None, args.base, options, helm, charts, base_charts, log
            )
    else:
        from deployer.planner import live_plan, plan_against_cluster

        assert cluster is not None
        planned = plan_against_cluster(proj, options, helm, charts, cluster, log)
        plan = live_plan(planned, cluster, log, helm.major) if args.live else planned.plan
        if args.save_plan:
            save_plan(args, proj, plan, planned, charts, cluster.target, helm.version_text, log)
    from deployer.commands.output import emit_plan

    emit_plan(plan, args.output)
    return 2 if args.detailed_exitcode and plan.has_changes else 0


def save_plan(  # noqa: PLR0917
    args: argparse.Namespace,
    proj: Project,
    plan: Any,
    planned: Any,
    charts: Any,
    target: Any,
    helm_version: str,
    log: Callable[[str], None],
) -> None:
    """Write the plan for `apply --plan` (deployer/planfile.py): digests, never values."""
    from datetime import UTC, datetime

    from deployer import __version__, planfile
    from deployer.runinfo import spec_commit

    salt = planfile.new_salt()
    header = planfile.Header(
        project=proj.name,
        environment=args.environment,
        spec_commit=spec_commit(proj.root),
        deployer_version=__version__,
        helm_version=helm_version,
        kube_context=target.context,
        kube_server=target.server,
        live=args.live,
        selectors=args.selector,
    )
    records = planfile.records_of(plan, planned, charts, proj.root, salt)
    doc = planfile.build(header, records, salt, datetime.now(UTC))
    planfile.write(Path(args.save_plan), doc)
    log(f"saved the plan of {len(records)} release(s) to {args.save_plan} ({doc['digest'][:19]})")
