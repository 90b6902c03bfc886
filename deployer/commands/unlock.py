from __future__ import annotations

import argparse
import os

from deployer.commands.common import project
from deployer.errors import UsageError


def unlock(args: argparse.Namespace) -> int:
    from deployer.commands.session import guard_context
    from deployer.kube import Cluster, resolve_target
    from deployer.lock import lease_name, release

    if not args.force:
        raise UsageError(
            "unlock removes a lock another run may hold", hint="pass --force if that run is gone"
        )
    proj = project(args)
    proj.environment(args.environment)
    target = resolve_target(args.kubeconfig, args.kube_context, os.environ)
    guard_context(proj, args.environment, target.context)
    removed = release(Cluster(target), args.environment, None)
    state = "removed" if removed else "was not locked"
    print(f"{args.environment}: lock {lease_name(args.environment)} {state}")
    return 0
