"""`deployer apply` (what changed) and `deployer sync` (everything): plan, confirm, lock, execute."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployer import cancel, hookrun
from deployer.commands.common import helm_and_charts, plan_options
from deployer.commands.heartbeat import Heartbeat, interval
from deployer.commands.live_table import live_table
from deployer.commands.live_table import wanted as live_table_wanted
from deployer.commands.output import emit_plan
from deployer.commands.session import Session, confirm, locked, open_session, refuse_flux_owned
from deployer.errors import UsageError
from deployer.execute import Executor, RunReport, StepResult
from deployer.helmtest import Tester, after_apply
from deployer.observed import current_releases
from deployer.plan import BLOCKED, CHANGING, PRUNE, Plan, apply_order
from deployer.project import flags_of
from deployer.releaseflags import rollback_args, uninstall_args
from deployer.runinfo import new_run_id, spec_commit

if TYPE_CHECKING:
    from deployer.lock import Lock
    from deployer.planfile import SavedPlan
    from deployer.planner import EnvironmentPlan


def apply(args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    every = interval(os.environ)  # DEPLOYER_PROGRESS_SECONDS, checked before any work
    saved = read_saved_plan(args)  # a bad plan file is refused before anything else
    session = open_session(args)  # the kube-context guard refuses here, before anything else
    if saved is not None and nothing_to_do(saved, session, args):
        return 0
    run_id = new_run_id()
    options = plan_options(args)
    _helm, charts = helm_and_charts(args, session.proj, session.log)
    # Plan under the lock: a run that waited for another must see what that run did.
    with locked(session, args) as lock:
        planned, plan = plan_under_lock(session, options, charts, args, saved)
        if not args.prune:  # releases that left the spec are only shown by diff unless asked
            for kept in sorted(r.key for r in plan.releases if r.action == PRUNE):
                print(
                    f"note: {kept} left the spec and is kept (labelled for project {session.proj.name}, "
                    f"environment {args.environment}): `deployer apply --prune` uninstalls it",
                    file=sys.stderr,
                )
            plan = without_prunes(plan)
        if not plan.has_changes or not (session.env.protected and not args.yes):  # else: in the plan
            for note in plan.notes:
                print(f"note: {note}", file=sys.stderr)
        if not plan.has_changes:
            if args.output == "json":
                _emit(RunReport(args.environment, run_id), "json")
            else:
                sys.stdout.write(
                    f"No changes: {len(plan.releases)} release(s) in {args.environment} are up to date.\n"
                )
            return 0
        refuse_flux_owned(
            {r.key: r.flux_owner for r in plan.releases if r.flux_owner and r.action in CHANGING}, args
        )
        if session.env.protected and not args.yes:
            emit_plan(plan, "text")
        confirm(session.env.protected, args, "the plan above")
        rollback = args.rollback_on_failure if args.rollback_on_failure is not None else session.env.protected
        executor = _executor(session, args, plan, planned, charts, run_id=run_id, lock=lock)
        desired = {s.release.key: s.release for s in planned.states}
        values = {s.release.key: s.values for s in planned.states}
        from deployer.rollout import Rollout, targets

        # Follows what installs and upgrades wait for; the executor ends its watches when done.
        rollout = Rollout(
            session.cluster, targets(plan, planned.states, planned.observed, helm_major=session.helm.major)
        )
        executor.rollout = rollout
        if live_table_wanted():
            with live_table(rollout.waiting) as table:
                executor.on_event = table.on_event
                report = asyncio.run(executor.run(plan, desired, values, rollback_on_failure=rollback))
        else:
            timeouts = {k: r.timeout for k, r in desired.items()}
            with Heartbeat(session.log, timeouts, every, rollout.waiting) as beat:
                printer = executor.on_event

                def on_event(step: StepResult) -> None:
                    printer(step)
                    beat.on_event(step)

                executor.on_event = on_event
                report = asyncio.run(executor.run(plan, desired, values, rollback_on_failure=rollback))
    cancelled_states(session, report)  # when cancelled: what helm left each running release as
    for rel in plan.releases:
        if rel.action == BLOCKED:
            report.steps.append(StepResult(rel.key, BLOCKED, status="skipped", detail="; ".join(rel.reasons)))
    _emit(report, args.output)
    lock.check()  # a run that lost its lock exits 1 naming the new holder, after its report
    return 0 if report.ok else 1


def _executor(
    session: Session,
    args: argparse.Namespace,
    plan: Plan,
    planned: EnvironmentPlan,
    charts: Any,
    *,
    run_id: str,
    lock: Lock,
) -> Executor:
    """The run's executor: its flags, CRD step, hooks and (apply --test) the tests after it."""
    from deployer.crds import applier as crd_applier

    executor = Executor(
        helm=session.helm,
        charts=charts,
        kube_flags=session.target.helm_flags(),
        environment=args.environment,
        project=session.proj.name,
        run_id=run_id,
        description=f"deployer run {run_id} commit {spec_commit(session.proj.root)}",
        concurrency=args.concurrency,
        on_event=_printer(session.log),
        stop_reason=lambda: str(lock.lost_error().message) if lock.lost.is_set() else "",
        openapi_check=not session.cluster.validates_fields(),
        apply_crds=crd_applier(session.cluster, charts, session.log),
        force_conflicts=frozenset(
            r.key
            for r in plan.releases
            if r.drift and r.key in planned.observed and planned.observed[r.key].apply_method == "ssa"
        ),
        hooks=hookrun.for_plan(
            hookrun.context(session.proj, args.environment, run_id, session.target), plan, session.log
        ),
    )
    if args.test:  # a failed test fails its release (so rollback-on-failure covers it)
        executor.test_after = after_apply(
            Tester(session.helm, executor.kube_flags, session.log), planned.states
        )
    return executor


def plan_under_lock(
    session: Session, options: Any, charts: Any, args: argparse.Namespace, saved: SavedPlan | None
) -> tuple[EnvironmentPlan, Plan]:
    """Plan (after --recover), with live drift under --live, and refuse a saved plan that moved."""
    from deployer.planner import live_plan, plan_against_cluster

    planned = plan_against_cluster(session.proj, options, session.helm, charts, session.cluster, session.log)
    if args.recover and recover(session, planned.plan):
        planned = plan_against_cluster(
            session.proj, options, session.helm, charts, session.cluster, session.log
        )
    plan = planned.plan
    if args.live or (saved is not None and saved.live):
        plan = live_plan(planned, session.cluster, session.log, session.helm.major)
    if saved is not None:
        refuse_moved(saved, plan, planned, charts, session)
    return planned, plan


def read_saved_plan(args: argparse.Namespace) -> SavedPlan | None:
    if args.plan is None:
        return None
    if args.verb == "sync":
        raise UsageError(
            "sync upgrades every release: it does not apply a saved plan", hint="use apply --plan FILE"
        )
    if args.recover:
        raise UsageError(
            "--recover changes releases before planning, so no saved plan can match",
            hint="run apply --recover first, then make a new plan",
        )
    from deployer import planfile

    planfile.parse_duration(args.plan_max_age)  # a bad --plan-max-age fails before any work
    return planfile.read(Path(args.plan))


def nothing_to_do(saved: SavedPlan, session: Session, args: argparse.Namespace) -> bool:
    """Check that the saved plan is for this project, environment, cluster and selection, and
    young enough; True (and said) when it changes nothing."""
    from deployer import planfile

    planfile.check_header(
        saved,
        project=session.proj.name,
        environment=args.environment,
        server=session.target.server,
        selectors=args.selector,
        max_age=planfile.parse_duration(args.plan_max_age),
        now=datetime.now(UTC),
    )
    if saved.has_changes(prune=args.prune):
        return False
    if args.output == "json":
        _emit(RunReport(args.environment, new_run_id()), "json")
    else:
        sys.stdout.write(f"No changes: the plan in {args.plan} has nothing to do; nothing was changed.\n")
    return True


def refuse_moved(
    saved: SavedPlan, plan: Plan, planned: EnvironmentPlan, charts: Any, session: Session
) -> None:
    """Stop, changing nothing, unless the fresh plan is the saved one (release by release)."""
    from deployer import planfile

    fresh = planfile.records_of(plan, planned, charts, session.proj.root, saved.salt)
    reasons = planfile.moved(saved, fresh, planned.observed)
    if reasons:
        raise UsageError(
            f"the plan in {saved.path} is not what would be applied now; nothing was changed:\n  "
            + "\n  ".join(reasons),
            hint=f"review a new plan: deployer diff -e {saved.doc['environment']} --save-plan FILE",
        )
    session.log(f"the fresh plan matches {saved.path} ({len(fresh)} release(s))")


def recover(session: Session, plan: Plan) -> bool:
    """Unstick releases left pending-* by a run that died: roll each back to its last deployed
    revision, or uninstall one that never deployed. True if anything was done."""
    stuck = [r for r in plan.releases if r.action == BLOCKED and "pending-" in r.reasons[0]]
    secrets, _how = session.cluster.helm_release_secrets([r.namespace for r in stuck])
    observed = current_releases(secrets)
    with cancel.deferred():  # a signal lets a rollback helm has begun finish; nothing more starts
        for rel in stuck:
            if cancel.received():
                break
            flags = session.target.helm_flags()
            release_flags = flags_of(session.proj, rel.key)
            last = observed[rel.key].last_deployed_revision if rel.key in observed else None
            if last is None:
                extra = uninstall_args(release_flags)
                asyncio.run(session.helm.uninstall(rel.name, rel.namespace, flags, extra=extra))
                session.log(f"{rel.key}: recovered by uninstalling (it never deployed)")
            else:
                extra = rollback_args(release_flags, session.helm.major)
                asyncio.run(session.helm.rollback(rel.name, rel.namespace, last, flags, extra=extra))
                session.log(f"{rel.key}: recovered by rolling back to revision {last}")
    cancel.check()
    return bool(stuck)


def cancelled_states(session: Session, report: RunReport) -> None:
    if not cancel.received():
        return
    stopped = [s for s in report.steps if s.status == "failed" and s.detail.startswith("cancelled by")]
    if not stopped:
        return
    secrets, _how = session.cluster.helm_release_secrets(sorted({s.key.split("/", 1)[0] for s in stopped}))
    observed = current_releases(secrets)
    for s in stopped:
        now = observed.get(s.key)
        left = cancel.release_left(s.key, str(now.status) if now else None, now.revision if now else None)
        s.detail += f"; {left}"
        session.log(left)


def _printer(log: Callable[[str], None]) -> Callable[[StepResult], None]:
    def on_event(step: StepResult) -> None:
        # The run's hooks log their own lines, and a hook's progress is for the live table only.
        if step.action == "hook" or (step.status == "running" and step.detail):
            return
        extra = f" ({step.elapsed:.1f}s)" if step.finished else ""
        detail = f": {step.detail}" if step.detail else ""
        restored = f" -> {step.restored}" if step.restored else ""
        log(f"{step.key}: {step.action} {step.status}{extra}{detail}{restored}")

    return on_event


def _emit(report: RunReport, fmt: str) -> None:
    from deployer import run_report

    render = {"json": run_report.json_text, "markdown": run_report.markdown}.get(fmt, run_report.text)
    sys.stdout.write(render(report))


def _hooks(report: RunReport, event: str) -> list[StepResult]:
    return [h for h in report.hooks if h.key == event]


def without_prunes(plan: Plan) -> Plan:
    releases = tuple(r for r in plan.releases if r.action != PRUNE)
    return replace(plan, releases=releases, order=apply_order(releases))
