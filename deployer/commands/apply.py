"""`deployer apply` (what changed) and `deployer sync` (everything): plan, confirm, lock, execute."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable

from deployer.commands.common import helm_and_charts, progress, project
from deployer.commands.diff import cluster_plan
from deployer.commands.output import emit_plan
from deployer.commands.session import confirm
from deployer.errors import UsageError
from deployer.execute import Executor, RunReport, StepResult
from deployer.plan import BLOCKED
from deployer.runinfo import holder, new_run_id, spec_commit


def apply(args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    proj = project(args)
    env = proj.environment(args.environment)
    log = progress()
    run_id = new_run_id()
    planned = cluster_plan(args, proj, log, everything=args.verb == "sync")
    plan = planned.plan
    blocked = [r for r in plan.releases if r.action == BLOCKED]
    if not plan.has_changes:
        sys.stdout.write(
            f"No changes: {len(plan.releases)} release(s) in {args.environment} are up to date.\n"
        )
        return 0
    if env.protected and not args.yes:
        emit_plan(plan, "text")
    confirm(env.protected, args, "the plan above")
    rollback = args.rollback_on_failure if args.rollback_on_failure is not None else env.protected
    helm, charts = helm_and_charts(args, proj, log)
    commit = spec_commit(proj.root)
    executor = Executor(
        helm=helm,
        charts=charts,
        kube_flags=planned.target.helm_flags(),
        environment=args.environment,
        run_id=run_id,
        description=f"deployer run {run_id} commit {commit}",
        concurrency=args.concurrency,
        on_event=_printer(log),
    )
    desired = {s.release.key: s.release for s in planned.states}
    values = {s.release.key: s.values for s in planned.states}
    from deployer.lock import environment_lock

    with environment_lock(
        planned.cluster, args.environment, holder(os.environ), timeout=args.lock_timeout, log=log
    ):
        report = asyncio.run(executor.run(plan, desired, values, rollback_on_failure=rollback))
    for rel in blocked:
        report.steps.append(StepResult(rel.key, BLOCKED, status="skipped", detail="; ".join(rel.reasons)))
    _emit(report, args.output)
    return 0 if report.ok else 1


def _printer(log: Callable[[str], None]) -> Callable[[StepResult], None]:
    def on_event(step: StepResult) -> None:
        extra = f" ({step.elapsed:.1f}s)" if step.finished else ""
        detail = f": {step.detail}" if step.detail else ""
        restored = f" -> {step.restored}" if step.restored else ""
        log(f"{step.key}: {step.action} {step.status}{extra}{detail}{restored}")

    return on_event


def _emit(report: RunReport, fmt: str) -> None:
    if fmt == "json":
        doc = {
            "schemaVersion": 1,
            "environment": report.environment,
            "runId": report.run_id,
            "ok": report.ok,
            "rolledBack": report.rolled_back,
            "releases": [
                {
                    "key": s.key,
                    "action": s.action,
                    "status": s.status,
                    "detail": s.detail,
                    "revisionBefore": s.revision_before,
                    "restored": s.restored,
                    "seconds": round(s.elapsed, 1),
                }
                for s in report.steps
            ],
        }
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        return
    for s in report.steps:
        line = f"{s.key}\t{s.action}\t{s.status}"
        if s.detail:
            line += f"\t{s.detail}"
        if s.restored:
            line += f"\t{s.restored}"
        sys.stdout.write(line + "\n")
    counts: dict[str, int] = {}
    for s in report.steps:
        counts[s.status] = counts.get(s.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    verdict = "Apply complete" if report.ok else "Apply FAILED"
    if report.rolled_back:
        verdict += " (changes of this run rolled back)"
    sys.stdout.write(f"{verdict}: {summary}. Run {report.run_id}.\n")
