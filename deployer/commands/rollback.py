"""`deployer rollback`: undo the last apply of an environment (every release it changed, in reverse
`needs` order), or roll back one release to a revision."""

from __future__ import annotations

import argparse
from typing import Any

from deployer import cancel
from deployer.commands.session import Session, confirm, locked, open_session, refuse_flux_owned, step
from deployer.desired import resolve
from deployer.errors import UsageError
from deployer.graph import topological_order
from deployer.observed import ENV_LABEL, PROJECT_LABEL, RUN_LABEL, Revision, current_releases, histories
from deployer.project import flags_of
from deployer.releaseflags import rollback_args, uninstall_args


def rollback(args: argparse.Namespace) -> int:
    session = open_session(args)
    # Plan under the lock: a run that waited for another must roll back what that run did.
    with locked(session, args) as lock:
        plan, owners = _plan(session, args)
        refuse_flux_owned(owners, args)
        confirm(session.env.protected, args, "`deployer status`")
        ok = True
        with cancel.deferred():  # a signal lets the running helm finish; nothing more starts
            for key, revision in plan:
                if lock.lost.is_set() or cancel.received():  # nothing starts without the lock, or cancelled
                    break
                namespace, name = key.split("/", 1)
                flags = session.target.helm_flags()
                release_flags = flags_of(session.proj, key)
                if revision is None:
                    ok &= step(
                        key,
                        "uninstalled (the run installed it)",
                        session.helm.uninstall(name, namespace, flags, extra=uninstall_args(release_flags)),
                    )
                else:
                    extra = rollback_args(release_flags, session.helm.major)
                    ok &= step(
                        key,
                        f"rolled back to revision {revision}",
                        session.helm.rollback(name, namespace, revision, flags, extra=extra),
                    )
        lock.check()
    return 0 if ok else 1


def _plan(session: Session, args: argparse.Namespace) -> tuple[list[tuple[str, int | None]], dict[str, str]]:
    """(release key, revision to return to; None: uninstall), in the order to do them; and the
    HelmRelease that manages each of those releases Flux owns."""
    # helm rolls back to the values it stored: no sops key is needed to roll back.
    releases = {r.key: r for r in resolve(session.proj, args.environment, decrypt=False)}
    secrets, _how = session.cluster.helm_release_secrets([r.namespace for r in releases.values()])
    history = histories(secrets)
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
        return [(key, target)], _flux_owners(secrets, [key])
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
    return plan, _flux_owners(secrets, [k for k, _ in plan])


def _flux_owners(secrets: Any, keys: list[str]) -> dict[str, str]:
    current = current_releases(s for s in secrets if f"{s['metadata']['namespace']}/{_name(s)}" in keys)
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
