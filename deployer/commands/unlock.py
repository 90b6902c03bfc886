"""`deployer unlock --force`: remove the run lock of a project's environment, whoever holds it."""

from __future__ import annotations

import argparse

from deployer.commands.common import project
from deployer.errors import UsageError


def unlock(args: argparse.Namespace) -> int:
    from deployer.commands.session import kube_target
    from deployer.kube import Cluster
    from deployer.lock import force_unlock, lease_name

    if not args.force:
        raise UsageError(
            "unlock removes a lock another run may hold", hint="pass --force if that run is gone"
        )
    proj = project(args)
    proj.environment(args.environment)
    target = kube_target(proj, args.environment, args)
    namespace, name = proj.spec.lock.namespace, lease_name(proj.name, args.environment)
    removed = force_unlock(Cluster(target), namespace, name)
    if removed is None:
        print(f"{args.environment} was not locked: no Lease {namespace}/{name}")
    else:
        print(f"removed Lease {namespace}/{name} held by {removed.holder or 'nobody'}")
    return 0
