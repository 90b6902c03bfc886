"""`deployer rollback`: undo the last apply of an environment (every release it changed, in reverse
`needs` order), or roll back one release to a revision."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

from deployer import hookrun, hooks
from deployer.commands.session import Session, confirm, locked, open_session, refuse_flux_owned, step
from deployer.desired import resolve
from deployer.errors import UsageError
from deployer.graph import topological_order
from deployer.observed import (
    ENV_LABEL,
    PROJECT_LABEL,
    RUN_LABEL,
    Revision,
    current_releases,
    histories,
    unreadable_note,
)
from deployer.project import flags_of
from deployer.redact import for_release
from deployer.releaseflags import rollback_args, uninstall_args
from deployer.runinfo import new_run_id


def rollback(args: argparse.Namespace) -> int:
    session = open_session(args)
    # Plan under the lock: a run that waited for another must roll back what that run did.
    with locked(session, args) as lock:
        plan, owners, secrets = _plan(session, args)
        refuse_flux_owned(owners, args)
        confirm(session.env.protected, args, "`deployer status`")
        changes = _changes(session, args.environment, plan, secrets)
        runner = hookrun.Runner(
            hookrun.context(session.proj, args.environment, new_run_id(), session.target),
            session.log,
            hooks.in_order(hooks.run_hooks(session.proj, [k for k, _ in plan])),
            hooks.masks(c.redact for c in changes),
        )
        ok = hookrun.run_changes(runner, changes, step=step, stopped=lock.lost.is_set, out=_print)
        lock.check()
    return 0 if ok else 1


def _changes(
    session: Session, environment: str, plan: list[tuple[str, int | None]], secrets: Any
) -> list[hookrun.Change]:
    """Each rollback with its hooks: presync/postsync around a rollback to a revision,
    preuninstall/postuninstall around the uninstall of a release the run installed."""
    declared = hooks.declared(session.proj)[1]
    current = current_releases(secrets)
    flags = session.target.helm_flags()
    sensitive = {r.key: r.sensitive for r in resolve(session.proj, environment, decrypt=False)}
    out = []
    for key, revision in plan:
        namespace, name = key.split("/", 1)
        now = current.get(key)
        redact = for_release(sensitive.get(key, ()), [(now.values, now.manifest)] if now else []).redact
        if revision is None:
            chart = (now.chart, now.chart_version) if now else ("", "")
            subject = hookrun.Subject(key, name, namespace, *chart)
            events, done = hooks.UNINSTALL, "uninstalled (the run installed it)"
            extra = uninstall_args(flags_of(session.proj, key))
            action = partial(session.helm.uninstall, name, namespace, flags, extra=extra)
        else:
            subject = hookrun.Subject(key, name, namespace, *hookrun.revision_chart(secrets, key, revision))
            events, done = hooks.SYNC, f"rolled back to revision {revision}"
            extra = rollback_args(flags_of(session.proj, key), session.helm.major)
            action = partial(session.helm.rollback, name, namespace, revision, flags, extra=extra)
        out.append(hookrun.Change(subject, events, declared.get(key, ()), redact, done, action))
    return out


def _print(line: str) -> None:
    sys.stdout.write(line + "\n")


def _plan(
    session: Session, args: argparse.Namespace
) -> tuple[list[tuple[str, int | None]], dict[str, str], Any]:
    """(release key, revision to return to; None: uninstall), in the order to do them; the
    HelmRelease that manages each of those releases Flux owns; and helm's release Secrets."""
    # helm rolls back to the values it stored: no sops key is needed to roll back.
    releases = {r.key: r for r in resolve(session.proj, args.environment, decrypt=False, pin=False)}
    secrets, _how = session.cluster.helm_release_secrets([r.namespace for r in releases.values()])
    unreadable: list[str] = []
    history = histories(secrets, unreadable)
    for what in unreadable:
        session.log(unreadable_note(what))
    ours = {
        k: h
        for k, h in history.items()
        if h[-1].labels.get(ENV_LABEL) == args.environment
        and h[-1].labels.get(PROJECT_LABEL) == session.proj.name
    }
    if args.release:
        matches = [k for k in ours if args.release in (k, k.split("/", 1)[1])]
        if len(matches) != 1:
            known = ", ".join(sorted(ours)) or "(none)"
            raise UsageError(
                f"no deployed release '{args.release}' in environment '{args.environment}'",
                hint=f"releases deployed by deployer here: {known}",
            )
        key = matches[0]
        target = args.revision or _previous(ours[key])
        if target is None:
            raise UsageError(f"{key} has no earlier revision to roll back to")
        return [(key, target)], _flux_owners(secrets, [key], session.log), secrets
    if args.revision:
        raise UsageError("--revision needs a RELEASE")
    runs = sorted({h[-1].labels.get(RUN_LABEL, "") for h in ours.values()} - {""})
    if not runs:
        raise UsageError(f"no apply of environment '{args.environment}' found in the cluster")
    last = runs[-1]
    changed = [k for k, h in ours.items() if h[-1].labels.get(RUN_LABEL) == last]
    needs = {k: releases[k].needs if k in releases else () for k in changed}
    plan = [(k, _previous(ours[k])) for k in reversed(topological_order(changed, needs))]
    session.log(f"rolling back run {last}: {', '.join(k for k, _ in plan)}")
    return plan, _flux_owners(secrets, [k for k, _ in plan], session.log), secrets


def _flux_owners(secrets: Any, keys: list[str], log: Callable[[str], None]) -> dict[str, str]:
    unreadable: list[str] = []
    current = current_releases(
        (s for s in secrets if f"{s['metadata']['namespace']}/{_name(s)}" in keys), unreadable
    )
    for what in unreadable:
        log(unreadable_note(what))
    return {k: o.flux_owner for k, o in current.items() if o.flux_owner}


def _name(secret: Any) -> str:
    return str((secret["metadata"].get("labels") or {}).get("name", ""))


def _previous(revisions: list[Revision]) -> int | None:
    """The newest revision before the current one that was ever deployed (None: installed fresh)."""
    current = revisions[-1].revision
    earlier = [
        r.revision for r in revisions if r.revision < current and r.status in ("superseded", "deployed")
    ]
    return earlier[-1] if earlier else None
