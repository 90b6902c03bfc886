"""`deployer destroy`: uninstall the environment's releases, dependents first."""

from __future__ import annotations

import argparse
import sys

from deployer.commands.common import selectors
from deployer.commands.session import confirm, locked, open_session, step
from deployer.desired import resolve, select
from deployer.graph import topological_order
from deployer.observed import histories


def destroy(args: argparse.Namespace) -> int:
    session = open_session(args)
    releases = {r.key: r for r in select(resolve(session.proj, args.environment), selectors(args.selector))}
    secrets, _how = session.cluster.helm_release_secrets([r.namespace for r in releases.values()])
    present = [k for k in releases if k in histories(secrets)]
    order = list(reversed(topological_order(present, {k: releases[k].needs for k in present})))
    if not order:
        sys.stdout.write(f"Nothing to destroy: no release of {args.environment} is installed.\n")
        return 0
    confirm(session.env.protected, args, "the releases listed by `deployer status`")
    ok = True
    with locked(session, args):
        for key in order:
            rel = releases[key]
            ok &= step(
                key,
                "uninstalled",
                session.helm.uninstall(rel.name, rel.namespace, session.target.helm_flags()),
            )
    return 0 if ok else 1
