"""`deployer destroy`: uninstall the environment's releases, dependents first, and only those this
project deployed to this environment (labels deployer-project and deployer-environment)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from functools import partial

from deployer import hookrun, hooks
from deployer.commands.common import selectors
from deployer.commands.session import confirm, locked, open_session, refuse_flux_owned, step
from deployer.desired import resolve, select
from deployer.graph import topological_order
from deployer.observed import ENV_LABEL, PROJECT_LABEL, current_releases, unreadable_note
from deployer.project import flags_of
from deployer.redact import for_release
from deployer.releaseflags import uninstall_args
from deployer.runinfo import new_run_id


def destroy(args: argparse.Namespace) -> int:
    session = open_session(args)
    project, env = session.proj.name, args.environment
    # Uninstalling needs no values: no sops key is needed to destroy.
    desired = resolve(session.proj, env, decrypt=False, pin=False)
    releases = {r.key: r for r in select(desired, selectors(args.selector))}
    # Plan under the lock: a run that waited for another must see what that run did.
    with locked(session, args) as lock:
        secrets, _how = session.cluster.helm_release_secrets([r.namespace for r in releases.values()])
        unreadable: list[str] = []
        observed = current_releases(secrets, unreadable)
        for what in unreadable:
            session.log(unreadable_note(what))
        present = [k for k in releases if k in observed]
        ours = [k for k in present if observed[k].belongs_to(project, env)]
        for key in present:
            if key in ours:
                continue
            owner = _other_owner(observed[key].labels, project, env)
            if owner is None and args.include_unlabelled:
                ours.append(key)
            elif owner is None:
                sys.stdout.write(
                    f"{key}\tleft alone: not labelled as deployed by project '{project}' to environment "
                    f"'{env}' (--include-unlabelled uninstalls it too)\n"
                )
            else:
                sys.stdout.write(f"{key}\tleft alone: it belongs to {owner}\n")
        refuse_flux_owned({k: o for k in ours if (o := observed[k].flux_owner)}, args)
        order = list(reversed(topological_order(ours, {k: releases[k].needs for k in ours})))
        if not order:
            what = "installed" if not present else f"deployed by project '{project}'"
            sys.stdout.write(f"Nothing to destroy: no release of {env} is {what}.\n")
            return 0
        confirm(session.env.protected, args, "the releases listed by `deployer status`")
        declared = hooks.declared(session.proj)[1]
        changes = []
        for key in order:
            rel, now = releases[key], observed[key]
            changes.append(
                hookrun.Change(
                    hookrun.Subject(key, rel.name, rel.namespace, now.chart, now.chart_version),
                    hooks.UNINSTALL,
                    declared.get(key, ()),
                    for_release(rel.sensitive, [(now.values, now.manifest)]).redact,
                    "uninstalled",
                    partial(
                        session.helm.uninstall,
                        rel.name,
                        rel.namespace,
                        session.target.helm_flags(),
                        extra=uninstall_args(flags_of(session.proj, key)),
                    ),
                )
            )
        runner = hookrun.Runner(
            hookrun.context(session.proj, env, new_run_id(), session.target),
            session.log,
            hooks.in_order(hooks.run_hooks(session.proj, order)),
            hooks.masks(c.redact for c in changes),
        )
        ok = hookrun.run_changes(runner, changes, step=step, stopped=lock.lost.is_set, out=_print)
        lock.check()
    return 0 if ok else 1


def _print(line: str) -> None:
    sys.stdout.write(line + "\n")


def _other_owner(labels: Mapping[str, str], project: str, env: str) -> str | None:
    """Another project's or environment's, by a deployer label that differs from ours; None when
    its labels are missing (installed by hand, or by a deployer without project labels)."""
    theirs = (labels.get(PROJECT_LABEL, project), labels.get(ENV_LABEL, env))
    if theirs == (project, env):
        return None
    return f"project '{theirs[0]}', environment '{theirs[1]}'"
