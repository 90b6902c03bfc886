"""`deployer capabilities -e ENV`: write what the environment's cluster serves (Kubernetes version,
API versions) to environments/ENV/capabilities.yaml, for offline renders (deployer/capabilities.py)."""

from __future__ import annotations

import argparse
import sys

from deployer.commands.common import progress, project


def capabilities(args: argparse.Namespace) -> int:
    from deployer.capabilities import read, shown_path, write
    from deployer.commands.session import kube_target
    from deployer.kube import Cluster

    proj = project(args)
    proj.environment(args.environment)  # an unknown environment fails before the cluster is asked
    log = progress()
    cluster = Cluster(kube_target(proj, args.environment, args))
    version, apis = cluster.version(), cluster.api_versions()
    log(f"read {len(apis)} API version(s) from {cluster.target.context}, Kubernetes {version}")
    path = proj.root / shown_path(args.environment)
    before = read(path) if path.is_file() else None
    write(proj, args.environment, version, apis)
    what = "unchanged" if before == (version, tuple(sorted(set(apis)))) else "written"
    sys.stdout.write(
        f"{shown_path(args.environment)}: {what} (Kubernetes {version}, {len(set(apis))} API versions)\n"
    )
    return 0
