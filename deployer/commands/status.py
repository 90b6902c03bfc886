"""`deployer status`: what is deployed for an environment, by which run and commit."""

from __future__ import annotations

import argparse
import re
import sys

from deployer.commands.common import project
from deployer.commands.session import kube_target
from deployer.desired import resolve
from deployer.observed import RUN_LABEL, current_releases, unreadable_note


def status(args: argparse.Namespace) -> int:
    from deployer.kube import Cluster

    proj = project(args)
    # Names, namespaces and charts only: no values, so no sops key is needed to look.
    releases = resolve(proj, args.environment, decrypt=False, pin=False)
    target = kube_target(proj, args.environment, args)
    secrets, _how = Cluster(target).helm_release_secrets([r.namespace for r in releases])
    unreadable: list[str] = []
    observed = current_releases(secrets, unreadable)
    for what in unreadable:
        sys.stderr.write(unreadable_note(what) + "\n")
    rows = [("RELEASE", "REVISION", "STATUS", "CHART", "RUN", "COMMIT", "UPDATED")]
    for rel in sorted(releases, key=lambda r: r.key):
        o = observed.get(rel.key)
        if o is None:
            rows.append(
                (
                    rel.key,
                    "-",
                    "not installed" if rel.installed else "absent (installed: false)",
                    rel.chart.name,
                    "-",
                    "-",
                    "-",
                )
            )
            continue
        commit = re.search(r"commit (\S+)", o.description)
        rows.append(
            (
                rel.key,
                str(o.revision),
                f"{o.status} (Flux: HelmRelease {o.flux_owner})" if o.flux_owner else o.status,
                f"{o.chart} {o.chart_version}",
                o.labels.get(RUN_LABEL, "-"),
                commit[1] if commit else "-",
                o.deployed_at[:19] or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
    return 0
