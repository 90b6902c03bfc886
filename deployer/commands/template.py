from __future__ import annotations

import argparse
import asyncio
import sys
import time

from deployer.capabilities import explain_kube_version, for_environment, missing_note
from deployer.commands.common import (
    cli_layers,
    create_output_dir,
    helm_and_charts,
    output_dir,
    progress,
    project,
    selectors,
)
from deployer.desired import resolve, select
from deployer.errors import HelmError, UsageError
from deployer.graph import topological_order
from deployer.merge import merge_layers
from deployer.render import render_all


def template(args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    out = output_dir(args.output_dir) if args.output_dir else None  # before any work
    proj = project(args)
    releases = [
        r
        for r in select(resolve(proj, args.environment, cli_layers(args)), selectors(args.selector))
        if r.installed
    ]
    order = topological_order([r.key for r in releases], {r.key: r.needs for r in releases})
    by_key = {r.key: r for r in releases}
    ordered = [by_key[k] for k in order]
    values = {r.key: merge_layers(list(r.layers)).values for r in ordered}
    log = progress()
    caps = for_environment(proj, args.environment, args.kube_version)
    helm, charts = helm_and_charts(args, proj, log)
    start = time.monotonic()
    try:
        rendered = asyncio.run(
            render_all(
                helm,
                charts,
                ordered,
                values,
                concurrency=args.concurrency,
                kube_version=caps.kube_version,
                api_versions=caps.api_versions,
                log=log,
            )
        )
    except HelmError as exc:
        raise explain_kube_version(exc, args.environment, caps) from None
    guarded = sorted(r.release.key for r in rendered if r.contents.uses_api_versions)
    if guarded and not caps.known:
        log(f"note: {missing_note(args.environment, guarded)}")
    if out is not None:
        create_output_dir(out)
        for item in rendered:
            (out / f"{item.release.namespace}--{item.release.name}.yaml").write_text(item.output)
    else:
        for item in rendered:
            sys.stdout.write(f"# release: {item.release.key} (chart {item.release.chart.name})\n")
            sys.stdout.write(
                item.output if item.output.endswith("\n") or not item.output else item.output + "\n"
            )
    elapsed = time.monotonic() - start
    log(f"rendered {len(rendered)} release(s) with helm {helm.version_text} in {elapsed:.1f}s")
    return 0
