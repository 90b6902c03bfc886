"""`deployer lock [-e ENV] [--check]`: resolve every repository and OCI release's version range into
deployer.lock.yaml (deployer/chartlock.py), or, with --check, exit 1 when that file is stale."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from deployer.commands.common import helm_and_charts, progress, project


def lock_(args: argparse.Namespace) -> int:
    from deployer.chartlock import lock_path, merged, stale
    from deployer.chartresolve import environment_requests, resolve_all
    from deployer.lockfile import load_lock, write
    from deployer.yamlsource import display_path

    proj = project(args)
    envs = [args.environment] if args.environment else proj.environment_names
    for env in envs:
        proj.environment(env)  # an unknown one is refused before any network request
    path = lock_path(proj)
    shown = display_path(path)
    old = load_lock(path)
    wanted = environment_requests(proj, envs)
    if not wanted and old is None:
        print("no repository or OCI release: nothing to lock")
        return 0
    log = progress()
    _helm, charts = helm_and_charts(args, proj, log)
    resolved = asyncio.run(resolve_all(proj, wanted, charts, old, pull=not args.check, log=log))
    # Without -e, entries of environments the spec no longer has are dropped (and stale for --check).
    scope = set(envs) if args.environment else set(envs) | _environments(old)
    new = merged(old, path, resolved, scope)
    asked = {(r.key, r.environment): r for r in wanted}
    if args.check:
        problems = stale(old, new, scope, asked)
        for line in problems:
            print(f"stale: {line}")
        if problems:
            print(f"{shown} is stale: run `deployer lock` and commit it", file=sys.stderr)
            return 1
        print(f"{shown} is up to date ({len(wanted)} release version(s) checked)")
        return 0
    for line in stale(old, new, scope, asked):
        print(f"locking: {line}")
    if write(new):
        print(f"wrote {shown}")
    else:
        print(f"{shown} is up to date")
    return 0


def _environments(lock: Any) -> set[str]:
    return {
        env for entries in (lock.releases.values() if lock else []) for e in entries for env in e.environments
    }
